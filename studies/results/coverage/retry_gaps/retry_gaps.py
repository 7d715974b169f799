"""Should a gap proposal that trained a student fill its size (``search.coverage.retry_gaps:
false``)? The design and the decision rule are fixed in README.md here, before any run.

Three parts, each resumable (a finished search or bench run is not run again):

1. coverage: the six searches of ``../grace2``'s grace-2 arm (demo, e40, digits x seeds 0, 1;
   each population's study file with ``grace_period: 2``) with ``retry_gaps: false``;
2. ``bench hypervolume --task fashion-mnist-2k-flops --samplers botorch`` (seeds 0-4);
3. ``bench hypervolume --task fashion-mnist-2k --samplers botorch`` (seeds 0-4);

the bench tasks with the study setting ``search.coverage.retry_gaps: false``, nothing else
changed.

  .venv/bin/python studies/results/coverage/retry_gaps/retry_gaps.py           # all of it
  .venv/bin/python studies/results/coverage/retry_gaps/retry_gaps.py --report  # summary.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "grace2"))
import grace2  # noqa: E402  (the populations, the coverage report and the target)

# prune_gap_proposals: the default when these searches ran (until 2026-12-05)
ARM = {"grace_period": 2, "coverage": {"retry_gaps": False}, "prune_gap_proposals": True}
TASKS = ("fashion-mnist-2k-flops", "fashion-mnist-2k")


def name(population: str, seed: int) -> str:
    return f"{population}-noretry-seed{seed}"


def storage(population: str) -> str:
    return f"sqlite:///{HERE / population}.db"


def search(population: str, seed: int) -> None:
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
        search=ARM,
        progress=False,
    )
    report = subprocess.run(
        [sys.executable, str(grace2.REPORT), storage(population), study],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out.write_text(report)


def bench(task: str) -> None:
    """The task with ours only, with this arm's coverage rules. (The runs were made by patching
    the task table, before ``bench_hypervolume(coverage=)`` existed: the same study setting.)"""
    from autostudent.bench.hypervolume import bench_hypervolume

    bench_hypervolume(
        HERE / task, samplers=["botorch"], task=task, coverage=ARM["coverage"],
        prune_gap_proposals=ARM["prune_gap_proposals"], log=print,
    )  # fmt: skip


def gap_outcomes(population: str, study: str) -> dict:
    """How many trials were gap proposals and how many of them are on the final front."""
    import optuna

    from autostudent import study as studydb

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.load_study(study_name=study, storage=storage(population))
    front = {r["params"] for r in studydb.summary(s)["pareto"]}
    gaps = [t for t in s.trials if t.user_attrs.get("proposal") == "gap"]
    return {
        "gap_proposals": len(gaps),
        "gap_on_front": sum(t.user_attrs.get("params") in front for t in gaps),
    }


def summary() -> dict:
    rows = []
    for population in grace2.POPULATIONS:
        for seed in grace2.SEEDS:
            path = HERE / f"{name(population, seed)}.json"
            if path.exists():
                r = json.loads(path.read_text())
                r["best_at"] = {f"1/{k}": grace2.best_at(r, k) for k in (10, 40)}
                r.update(gap_outcomes(population, name(population, seed)))
                rows.append({"population": population, "seed": seed, **r})
    benches = {}
    for task in TASKS:
        runs = sorted((HERE / task / "runs").glob("botorch-seed*.json"))
        hv = [json.loads(p.read_text())["hv_per_trial"][-1] for p in runs]
        benches[task] = {
            "seeds": len(hv),
            "hv_at_40": hv,
            "median": statistics.median(hv) if hv else None,
        }
    return {
        "coverage": {
            "runs": len(rows),
            "meets_coverage": sum(grace2.meets(r) for r in rows),
            "gap_proposals": sum(r["gap_proposals"] for r in rows),
            "gap_on_front": sum(r["gap_on_front"] for r in rows),
        },
        "bench": benches,
        "runs": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="only write summary.json")
    args = ap.parse_args()
    if not args.report:
        for task in TASKS:
            bench(task)
        for population in grace2.POPULATIONS:
            for seed in grace2.SEEDS:
                search(population, seed)
    result = summary()
    (HERE / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("coverage", "bench")}, indent=1))


if __name__ == "__main__":
    main()
