"""summary.json of the rungauto round (README.md here): per task and arm, the hypervolume at 20
and 40 finished trials (median, quartiles, per seed), beside ``../keepgap``'s same-setting runs
of ours and of GP and TPE; and the pre-registered rule's verdict.

  .venv/bin/python studies/results/bench_hypervolume/rungauto/summary.py > .../summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "keepgap"))
from summary import arm, judged  # noqa: E402  (keepgap's readings and rule, not a copy)

TASKS = ("fashion-mnist-2k-flops", "fashion-mnist-2k")
ARMS = ("auto", "none")


def main() -> None:
    tasks = {}
    for task in TASKS:
        row = {a: arm(HERE / f"{task}-{a}", gaps=False) for a in ARMS}
        row["optuna_auto"] = {
            s: arm(HERE / f"{task}-optuna-auto", s, gaps=False) for s in ("gp", "tpe")
        }
        keepgap = HERE.parent / "keepgap"
        row["keepgap"] = {
            "botorch": arm(keepgap / f"{task}-keepgap", gaps=False),
            **{s: arm(keepgap / f"{task}-optuna", s, gaps=False) for s in ("gp", "tpe")},
        }
        tasks[task] = row
    print(json.dumps(judged(tasks, "auto", "none"), indent=1))


if __name__ == "__main__":
    main()
