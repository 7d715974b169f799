"""Does a last rung at higher fidelity (6 epochs, first rung at 3) give the demo's search the
front users need? The design and the decision rule are fixed in README.md here, before any run.

Each search is the population's study file with only the study name, the storage, the seed,
``budget.epochs`` and ``search.grace_period`` changed, run through the Python API. The control
is ``../grace2``'s grace-2 arm (its committed reports). Resumable: a finished search's report
lands in ``<study>.json`` and is not run again.

  .venv/bin/python studies/results/coverage/fidelity6/fidelity6.py           # the 6 searches
  .venv/bin/python studies/results/coverage/fidelity6/fidelity6.py --report  # summary.json only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("grace2", HERE.parent / "grace2" / "grace2.py")
grace2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(grace2)

ARM = {"budget": {"epochs": 6}, "search": {"grace_period": 3}}
CONTROL_GRACE = 2  # ../grace2's arm that is the demo's setting today


def name(population: str, seed: int) -> str:
    return f"{population}-e6g3-seed{seed}"


def storage(population: str) -> str:
    return f"sqlite:///{HERE / population}.db"


def run(population: str, seed: int) -> None:
    import autostudent

    study = name(population, seed)
    out = HERE / f"{study}.json"
    if out.exists():
        return
    autostudent.search(
        grace2.POPULATIONS[population],
        storage=storage(population),
        study=study,
        seed=seed,
        progress=False,
        **ARM,
    )
    report = subprocess.run(
        [sys.executable, str(grace2.REPORT), storage(population), study],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out.write_text(report)


def rows() -> list[dict]:
    found = []
    for population in grace2.POPULATIONS:
        for seed in grace2.SEEDS:
            arms = {
                "e6g3": HERE / f"{name(population, seed)}.json",
                f"grace{CONTROL_GRACE}": grace2.HERE
                / f"{grace2.name(population, CONTROL_GRACE, seed)}.json",
            }
            for arm, path in arms.items():
                if path.exists():
                    r = json.loads(path.read_text())
                    r["best_at"] = {f"1/{k}": grace2.best_at(r, k) for k in (10, 40)}
                    found.append({"population": population, "seed": seed, "arm": arm, **r})
    return found


def summary() -> dict:
    runs = rows()
    arms = {}
    for arm in ("e6g3", f"grace{CONTROL_GRACE}"):
        mine = [r for r in runs if r["arm"] == arm]
        demo = [r["wall_s"] for r in mine if r["population"] == "demo"]
        arms[arm] = {
            "runs": len(mine),
            "meets_coverage": sum(grace2.meets(r) for r in mine),
            "median_span": grace2.median([r["span"] for r in mine]),
            "median_front": grace2.median([r["front_size"] for r in mine]),
            "median_complete": grace2.median([r["states"]["COMPLETE"] for r in mine]),
            "demo_median_seconds": grace2.median(demo),
        }
    e6 = arms["e6g3"]
    decided = e6["runs"] == len(grace2.SEEDS) * len(grace2.POPULATIONS)
    adopt = (
        decided
        and e6["meets_coverage"] > arms[f"grace{CONTROL_GRACE}"]["meets_coverage"]
        and e6["demo_median_seconds"] is not None
        and e6["demo_median_seconds"] <= 1200
    )
    return {"arms": arms, "rule_met": adopt if decided else None, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="only write summary.json")
    args = ap.parse_args()
    if not args.report:
        for population in sorted(grace2.POPULATIONS, key=lambda p: p != "digits"):  # fast first
            for seed in grace2.SEEDS:
                run(population, seed)
    result = summary()
    (HERE / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
