"""Does ``budget.rung_average: auto`` cost the demo's search its coverage? The design and the
decision rule are fixed in README.md here, before any run.

Each search is ``../gapfull``'s (the demo's settings and the product's defaults) with
``budget.rung_average`` named: ``auto`` or null (the model's reading). The two arms of one
search run back to back. Resumable: a finished search's report lands in ``<study>.json`` and is
not run again.

  .venv/bin/python studies/results/coverage/covauto/covauto.py           # the 16 searches
  .venv/bin/python studies/results/coverage/covauto/covauto.py --report  # summary.json only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "gapfull"))
import gapfull  # noqa: E402  (gapfull's searches, run the same way; it brings grace2, fidelity6)

fidelity6, grace2 = gapfull.fidelity6, gapfull.grace2

ARMS = {"auto": "auto", "none": None}  # arm: budget.rung_average
FIFTEEN = gapfull.FIFTEEN
# (population, seed, timeout) in the order fixed in README.md; pairs 1, 3, 5, 7 run auto first
ORDER = [
    ("demo", 0, None),
    ("demo", 0, FIFTEEN),
    ("e40", 0, None),
    ("e40", 0, FIFTEEN),
    ("demo", 1, None),
    ("e40", 1, None),
    ("digits", 0, None),
    ("digits", 1, None),
]


def settings(arm: str) -> dict:
    s = gapfull.SETTINGS
    return {**s, "budget": {**s["budget"], "rung_average": ARMS[arm]}}


def pair(index: int) -> list[str]:
    """The arms of the ``index``-th search (from 0) in the order they run."""
    return ["auto", "none"] if index % 2 == 0 else ["none", "auto"]


def tag(arm: str) -> str:
    return f"rung{arm}"


def rows() -> list[dict]:
    found = [
        gapfull.row(HERE, population, seed, timeout, tag(arm), arm)
        for population, seed, timeout in ORDER
        for arm in ARMS
    ]
    return [r for r in found if r is not None]


def earlier_none() -> dict:
    """gapfull's committed arm: the model's reading, an earlier machine and code."""
    runs = [r for r in gapfull.rows() if r["arm"] == gapfull.TAG]
    return {
        "searches": len(runs),
        "meets_coverage": sum(r["meets"] for r in runs),
        "at_40_trials": grace2.arm([r for r in runs if r["budget"] == "40 trials"]),
    }


def summary() -> dict:
    runs = rows()
    arms = {}
    for arm in ARMS:
        rs = [r for r in runs if r["arm"] == arm]
        arms[arm] = {
            "searches": len(rs),
            "meets_coverage": sum(r["meets"] for r in rs),
            "at_40_trials": grace2.arm([r for r in rs if r["budget"] == "40 trials"]),
            "at_15_minutes_met": sum(r["meets"] for r in rs if r["budget"] == "15 min"),
            # trials the rung stopped: all but gap proposals, which train on
            "stopped_at_rung": sum(r["states"]["PRUNED"] - r["gap_pruned"] for r in rs),
        }
    decided = all(arms[a]["searches"] == len(ORDER) for a in ARMS)
    keep_auto = arms["auto"]["meets_coverage"] >= arms["none"]["meets_coverage"]
    return {
        "arms": arms,
        "rule": "auto stays the default unless it meets the coverage target in fewer searches",
        "auto_stays": keep_auto if decided else None,
        "gapfull_committed_none": earlier_none(),
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
                    tag=tag(arm),
                    settings=settings(arm),
                    here=HERE,
                )
                (HERE / "summary.json").write_text(json.dumps(summary(), indent=1))
    result = summary()
    (HERE / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
