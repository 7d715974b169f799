"""Round 6's "reported beside" figure (README.md here, fixed before any run): per search, the
trials above 6,700 params (the sizes round 5 lost at the epoch-3 rung) and how many went on past
the rung, read the same way from round 5's studies and round 6's. A gap proposal trains its full
budget whatever the rung reads (`prune_gap_proposals: false` in both rounds), so it is counted
apart: the rung judged only the others.

  .venv/bin/python studies/results/students_e40_cap40/rungauto/near_cap.py > near_cap.json
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna

HERE = Path(__file__).resolve().parent
ROUNDS = {"round5": HERE.parent / "current", "round6": HERE}
NEAR_CAP = 6700


def search(db: Path) -> dict:
    storage = f"sqlite:///{db}"
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    rows = [
        {
            "trial": t.number,
            "params": t.user_attrs["params"],
            "state": t.state.name,
            "epochs": t.user_attrs.get("epochs"),
            "proposal": t.user_attrs.get("proposal"),
            "val_accuracy": t.user_attrs.get("val_accuracy"),
        }
        for t in study.trials
        if t.user_attrs.get("params", 0) > NEAR_CAP and t.state.name in ("COMPLETE", "PRUNED")
    ]
    judged = [r for r in rows if r["proposal"] != "gap"]
    return {
        "study": name,
        "above": len(rows),
        "gap_proposals": len(rows) - len(judged),
        "judged_at_rung": len(judged),
        "went_on": sum(r["state"] == "COMPLETE" for r in judged),
        "trials": rows,
    }


def main() -> dict:
    out: dict = {"near_cap_params": NEAR_CAP}
    for label, folder in ROUNDS.items():
        runs = {db.parent.name: search(db) for db in sorted(folder.glob("seed*/seed*.db"))}
        out[label] = {
            "searches": runs,
            "above": sum(r["above"] for r in runs.values()),
            "judged_at_rung": sum(r["judged_at_rung"] for r in runs.values()),
            "went_on": sum(r["went_on"] for r in runs.values()),
        }
    return out


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(json.dumps(main(), indent=2))
