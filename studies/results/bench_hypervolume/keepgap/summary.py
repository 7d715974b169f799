"""summary.json of the keepgap round (README.md here): per task and arm, the hypervolume at 20
and 40 finished trials (median, quartiles, per seed), what became of ours' gap proposals (read
from each run's study), beside the committed ``-stop23`` runs of ours and of Optuna's samplers;
and the pre-registered rule's verdict.

  .venv/bin/python studies/results/bench_hypervolume/keepgap/summary.py > .../summary.json
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

import numpy as np
import optuna

from autostudent.bench.hypervolume import hv_at

HERE = Path(__file__).resolve().parent
TASKS = ("fashion-mnist-2k-flops", "fashion-mnist-2k")
ARMS = ("keepgap", "default")
MARGIN = 0.01  # the rule's non-inferiority margin, fixed before any run


def gap_fate(db: Path) -> dict:
    name = optuna.get_all_study_summaries(f"sqlite:///{db}")[0].study_name
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    gaps = [t for t in study.trials if t.user_attrs.get("proposal") == "gap"]
    return dict(Counter(t.state.name for t in gaps))


def spread(values: list[float]) -> dict:
    q25, q75 = np.quantile(values, [0.25, 0.75])
    return {"median": statistics.median(values), "q25": float(q25), "q75": float(q75)}


def arm(folder: Path, sampler: str = "botorch", gaps: bool = True) -> dict | None:
    runs = [
        json.loads(p.read_text()) for p in sorted((folder / "runs").glob(f"{sampler}-seed*.json"))
    ]
    if not runs:
        return None
    at40, at20 = ([hv_at(r, k) for r in runs] for k in (40, 20))
    out = {
        "seeds": [r["seed"] for r in runs],
        "hv_40": at40,
        "hv_20": at20,
        "stopped": [r["seed"] for r in runs if r.get("stopped")],
        "at_40": spread(at40),
        "median_20": statistics.median(at20),
        "prune_gap_proposals": runs[0].get("prune_gap_proposals"),
    }
    if gaps:
        fates = [
            gap_fate(p.with_suffix(".db"))
            for p in sorted((folder / "runs").glob(f"{sampler}-seed*.json"))
            if p.with_suffix(".db").exists()
        ]
        out["gap_proposals_by_state"] = dict(sum((Counter(f) for f in fates), Counter()))
    return out


def non_inferior(new: dict | None, control: dict | None) -> bool | None:
    """The rule, once both arms have their 5 seeds: the new arm's median at 40 trials is at
    least the control's minus MARGIN."""
    if not (new and control and len(new["seeds"]) == 5 == len(control["seeds"])):
        return None
    return new["at_40"]["median"] >= control["at_40"]["median"] - MARGIN


def judged(tasks: dict[str, dict], new: str, control: str) -> dict:
    """The summary: each task's row gains ``non_inferior`` once both arms have their 5 seeds;
    ``rule_met`` is read once every task has."""
    verdicts = []
    for row in tasks.values():
        ok = non_inferior(row[new], row[control])
        if ok is not None:
            row["non_inferior"] = ok
            verdicts.append(ok)
    rule_met = all(verdicts) if len(verdicts) == len(tasks) else None
    return {"margin": MARGIN, "tasks": tasks, "rule_met": rule_met}


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tasks = {}
    for task in TASKS:
        row = {a: arm(HERE / f"{task}-{a}") for a in ARMS}
        today = HERE / f"{task}-optuna"  # GP and TPE on this code (README: added before they ran)
        row["optuna_same_code"] = {s: arm(today, s, gaps=False) for s in ("gp", "tpe")}
        committed = HERE.parent / f"{task}-stop23"
        row["committed"] = {
            s: arm(committed, s, gaps=False) for s in ("botorch", "gp", "tpe", "nsga2", "random")
        }
        tasks[task] = row
    print(json.dumps(judged(tasks, "keepgap", "default"), indent=1))


if __name__ == "__main__":
    main()
