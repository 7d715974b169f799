"""What the searches spent their proposals on, read from their studies: the figures that
motivated ``retry_gaps`` and the FLOPs-task ablations (README.md here and
``../../bench_hypervolume/fashion-mnist-2k-flops-norules``).

- ``grace2``: per search of ``../grace2``, its gap proposals and how many ended on the front
  (the "129 gap proposals, 16 on a front" of ``autostudent/sampler/_coverage.py``);
- ``bench``: per bench run here and in ``fashion-mnist-2k-flops-norules``, its proposals, the
  trainings of the space's smallest student (states in order) and the front's smallest member.

  .venv/bin/python studies/results/coverage/retry_gaps/proposals.py > .../proposals.json
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import optuna

from autostudent import study as studydb

HERE = Path(__file__).resolve().parent
BENCHES = {
    "retry_gaps/fashion-mnist-2k-flops": (HERE / "fashion-mnist-2k-flops", "flops"),
    "retry_gaps/fashion-mnist-2k": (HERE / "fashion-mnist-2k", "params"),
    "norules/fashion-mnist-2k-flops": (
        HERE.parents[1] / "bench_hypervolume" / "fashion-mnist-2k-flops-norules",
        "flops",
    ),
}


def studies(url: str):
    for s in optuna.get_all_study_summaries(url):
        yield optuna.load_study(study_name=s.study_name, storage=url)


def grace2() -> list[dict]:
    rows = []
    for db in sorted((HERE.parent / "grace2").glob("*.db")):
        for study in studies(f"sqlite:///{db}"):
            front = {r["params"] for r in studydb.summary(study)["pareto"]}
            gaps = [t for t in study.trials if t.user_attrs.get("proposal") == "gap"]
            on_front = sum(t.user_attrs.get("params") in front for t in gaps)
            rows.append({"study": study.study_name, "gap": len(gaps), "on_front": on_front})
    return rows


def bench(folder: Path, size: str) -> list[dict]:
    rows = []
    for db in sorted((folder / "runs").glob("botorch-seed*.db")):
        study = next(studies(f"sqlite:///{db}"))
        trained = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        smallest = min(t.user_attrs[size] for t in trained)
        front = sorted((r[size], r["accuracy"]) for r in studydb.summary(study)["pareto"])
        run = json.loads(db.with_suffix(".json").read_text())
        rows.append(
            {
                "run": db.stem,
                "hv_at_40": run["hv_per_trial"][-1],
                "proposals": dict(Counter(t.user_attrs.get("proposal") for t in study.trials)),
                "smallest": smallest,
                "smallest_trainings": [
                    t.state.name for t in trained if t.user_attrs[size] == smallest
                ],
                "front_size": len(front),
                "front_smallest": front[0],
            }
        )
    return rows


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = grace2()
    out = {
        "grace2": {
            "gap": sum(r["gap"] for r in rows),
            "on_front": sum(r["on_front"] for r in rows),
            "searches": rows,
        },
        "bench": {name: bench(folder, size) for name, (folder, size) in BENCHES.items()},
    }
    print(json.dumps(out, indent=1))
