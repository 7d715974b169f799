"""Does NAGO's own width floor (4) in place of the demo's (8) give fronts that cover the range,
on digits and on Fashion-MNIST? The design and the decision rule are fixed in README.md here,
before any run.

Each search is ``../covauto``'s ``auto`` arm (the population's study file at the product's
defaults, run by ``fidelity6.run``) with the space's ``width`` floor named: 8 (the demo's study
file) or 4. The two arms of one search run back to back. Resumable: a finished search's report
lands in ``<study>.json`` and is not run again.

  .venv/bin/python studies/results/coverage/width4/width4.py           # the 16 searches
  .venv/bin/python studies/results/coverage/width4/width4.py --report  # summary.json only
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "covauto"))
import covauto  # noqa: E402  (its searches and settings; it brings gapfull, fidelity6, grace2)

fidelity6, gapfull, grace2 = covauto.fidelity6, covauto.gapfull, covauto.grace2

FLOORS = {"w8": 8, "w4": 4}  # arm: the space's width floor
FIFTEEN = gapfull.FIFTEEN
# (population, seed, timeout) in the order fixed in README.md: the 40-trial searches first
ORDER = [
    ("digits", 0, None),
    ("digits", 1, None),
    ("demo", 0, None),
    ("e40", 0, None),
    ("demo", 1, None),
    ("e40", 1, None),
    ("demo", 0, FIFTEEN),
    ("e40", 0, FIFTEEN),
]
FASHION = ("demo", "e40")
WALL_LIMIT = 1.2  # the arm's median demo wall clock at 40 trials, at most this × the control's
ACCURACY_LIMIT = 0.005  # the arm's median best accuracy at ≤ 1/10 and ≤ 1/40, at most this below


def settings(arm: str) -> dict:
    """covauto's `auto` arm (the product's defaults) with the space's width floor named; the
    other ranges are the demo study file's (every population's file has the same space)."""
    from autostudent.config import load_config

    ranges = load_config(grace2.POPULATIONS["demo"]).space.overrides
    width = {**ranges["width"], "low": FLOORS[arm]}
    return {**covauto.settings("auto"), "space": {"overrides": {**ranges, "width": width}}}


def pair(index: int) -> list[str]:
    """The arms of the ``index``-th search (from 0) in the order they run."""
    return ["w4", "w8"] if index % 2 == 0 else ["w8", "w4"]


def rows() -> list[dict]:
    found = [
        gapfull.row(HERE, population, seed, timeout, arm)
        for population, seed, timeout in ORDER
        for arm in FLOORS
    ]
    return [r for r in found if r is not None]


def median_best(rs: list[dict], fraction: str) -> float | None:
    values = [r["best_at"][fraction] for r in rs if r["best_at"][fraction] is not None]
    return statistics.median(values) if values else None


def summary() -> dict:
    runs = rows()
    arms = {}
    for arm in FLOORS:
        rs = [r for r in runs if r["arm"] == arm]
        fashion = [r for r in rs if r["population"] in FASHION and r["budget"] == "40 trials"]
        arms[arm] = {
            "searches": len(rs),
            "meets_coverage": sum(r["meets"] for r in rs),
            "at_40_trials": grace2.arm([r for r in rs if r["budget"] == "40 trials"]),
            "at_15_minutes_met": sum(r["meets"] for r in rs if r["budget"] == "15 min"),
            "fashion_40_trials_median_best_at": {
                f: median_best(fashion, f) for f in ("1/10", "1/40")
            },
            "smallest_front_student": [min(r["front_params"]) for r in rs],
        }
    decided = all(arms[a]["searches"] == len(ORDER) for a in FLOORS)
    w4, w8 = arms["w4"], arms["w8"]
    wall = (w4["at_40_trials"]["demo_median_seconds"], w8["at_40_trials"]["demo_median_seconds"])
    guards = {
        "more_searches_met": w4["meets_coverage"] > w8["meets_coverage"],
        "demo_wall_within": None not in wall and wall[0] <= WALL_LIMIT * wall[1],
        "fashion_accuracy_within": all(
            None not in (a, b) and a >= b - ACCURACY_LIMIT
            for a, b in zip(
                w4["fashion_40_trials_median_best_at"].values(),
                w8["fashion_40_trials_median_best_at"].values(),
                strict=True,
            )
        ),
    }
    return {
        "arms": arms,
        "rule": "the demo's width floor becomes 4 if w4 meets the coverage target in more "
        "searches, its demo wall clock is within 1.2x and its Fashion-MNIST fronts' median best "
        "accuracy at <= 1/10 and <= 1/40 is within 0.5 pt (README.md)",
        "conditions": guards if decided else None,
        "adopt_width4": all(guards.values()) if decided else None,
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="only write summary.json")
    args = ap.parse_args()
    if not args.report:
        for index, (population, seed, timeout) in enumerate(ORDER):
            for arm in pair(index):
                fidelity6.run(
                    population,
                    seed,
                    timeout=timeout,
                    tag=arm,
                    settings=settings(arm),
                    here=HERE,
                )
                (HERE / "summary.json").write_text(json.dumps(summary(), indent=1))
    result = summary()
    (HERE / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
