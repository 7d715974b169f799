"""Do the evidence's seed-0 runs reproduce on the current code? Reruns stored runs of
../runs (by key) with final_training.execute and writes each new record beside the old figure.

  .venv/bin/python studies/results/students/repro/repro.py KEY [KEY ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RUNS = HERE.parent / "runs"
DB = f"sqlite:///{HERE.parent / 'fashion_mnist.db'}"  # read only: nothing is stored in it


def main(keys: list[str]) -> None:
    from autostudent import study as studydb
    from autostudent.export import study_config
    from autostudent.final_runs import KD, Recipe, RunPlan
    from autostudent.final_training import execute, load_context

    torch.set_num_threads(1)
    study = studydb.load(DB, "fashion-mnist-evidence")
    ctx = load_context(study_config(study, DB))
    for key in keys:
        old = json.loads((RUNS / f"{key}.json").read_text())
        plan = RunPlan(
            old["role"], old["name"], old["spec"], old["params"],
            KD(**old["kd"]) if old["kd"] else None, old["seed"], Recipe(**old["recipe"]),
            trial=old["trial"], target_params=old["target_params"],
        )  # fmt: skip
        assert plan.key == key, (plan.key, key)
        new = execute(plan, ctx)
        new["was"] = {"test_accuracy": old["test_accuracy"], "finished": old.get("finished")}
        (HERE / f"{key}.json").write_text(json.dumps(new, indent=1) + "\n")
        print(f"{key}: was {old['test_accuracy']:.4f}, now {new['test_accuracy']:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
