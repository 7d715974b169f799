"""Does a first rung at epoch 2 (``grace_period: 2``) give the demo's search the front users
need? The design and the decision rule are fixed in README.md here, before any run.

Each search is the population's study file with only the study name, the storage, the seed and
``search.grace_period`` changed, run through the Python API; the two arms of one population and
seed run one after the other, so that both see the same machine. Resumable: a finished study is
not run again (``search`` continues an unfinished one), and each study's coverage report lands
in ``<study>.json`` as it ends.

  .venv/bin/python studies/results/coverage/grace2/grace2.py           # all 12 searches
  .venv/bin/python studies/results/coverage/grace2/grace2.py --report  # summary.json only
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parents[1]
REPORT = HERE.parent / "coverage_report.py"
POPULATIONS = {  # name: the study file whose settings every arm keeps
    "demo": RESULTS.parent / "fashion_mnist.yaml",
    "e40": RESULTS / "students_e40" / "fashion_mnist_e40.yaml",
    "digits": RESULTS / "rung_ema" / "digits" / "digits_resnet20.yaml",
}
SEEDS = (0, 1)
GRACES = (1, 2)


def name(population: str, grace: int, seed: int) -> str:
    return f"{population}-grace{grace}-seed{seed}"


def storage(population: str) -> str:
    return f"sqlite:///{HERE / population}.db"


def run(population: str, grace: int, seed: int) -> None:
    import autostudent

    study = name(population, grace, seed)
    out = HERE / f"{study}.json"
    if out.exists():
        return
    autostudent.search(
        POPULATIONS[population],
        storage=storage(population),
        study=study,
        seed=seed,
        search={"grace_period": grace},
        progress=False,
    )
    report = subprocess.run(
        [sys.executable, str(REPORT), storage(population), study],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out.write_text(report)


def meets(r: dict) -> bool:
    """Issue 16's coverage target on one search."""
    return (
        r["front_size"] >= 5
        and r["span"] >= 10
        and len(r["front_in_1/20..1/5"]) >= 1
        and r["max_repeats"] <= 3
    )


def best_at(r: dict, fraction: int) -> float | None:
    """The front's best validation accuracy (the search's own reading) at ≤ teacher/fraction."""
    fits = [
        a
        for p, a in zip(r["front_params"], r["front_accuracy"], strict=True)
        if p <= r["teacher_params"] / fraction
    ]
    return max(fits, default=None)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def read(path: Path) -> dict:
    """One search's coverage report, with the front's best accuracies at 1/10 and 1/40."""
    r = json.loads(path.read_text())
    r["best_at"] = {f"1/{k}": best_at(r, k) for k in (10, 40)}
    return r


def arm(rows: list[dict]) -> dict:
    """One arm's searches in figures: how many met the target, medians, the demo's wall clock."""
    return {
        "runs": len(rows),
        "meets_coverage": sum(meets(r) for r in rows),
        "median_span": median([r["span"] for r in rows]),
        "median_front": median([r["front_size"] for r in rows]),
        "median_complete": median([r["states"]["COMPLETE"] for r in rows]),
        "demo_median_seconds": median([r["wall_s"] for r in rows if r["population"] == "demo"]),
    }


def summary() -> dict:
    rows = []
    for population in POPULATIONS:
        for seed in SEEDS:
            for grace in GRACES:
                path = HERE / f"{name(population, grace, seed)}.json"
                if path.exists():
                    rows.append(
                        {"population": population, "seed": seed, "grace": grace, **read(path)}
                    )
    arms = {f"grace{grace}": arm([r for r in rows if r["grace"] == grace]) for grace in GRACES}
    return {"arms": arms, "runs": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="only write summary.json")
    args = ap.parse_args()
    if not args.report:
        for population in POPULATIONS:
            for seed in SEEDS:
                for grace in GRACES:
                    run(population, grace, seed)
    result = summary()
    (HERE / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result["arms"], indent=1))


if __name__ == "__main__":
    main()
