"""Round 5: why each pruned trial was stopped at MO-ASHA's rung (epoch 3). A diagnosis added after
seed 1's search, not one of the round's rules.

Replays the product's own rung ranking (``autostudent.early_stopping.rung_order`` on the arrival's
size band, ``SIZE_BAND``) over the trials of each seed's study, in the order they reached epoch 3.
The study stores no time of a rung arrival, so the order is estimated: start time + 3/epochs of
the trial's training time. The replay is checked against what happened: every trial it stops
must be the study's PRUNED ones, and no other (``matches``). For each stop it says whether the
arrival was on the first non-dominated front of its band (lost a tie, decided by arrival order)
or dominated there by a smaller, more accurate student at epoch 3.

  .venv/bin/python studies/results/students_e40_cap40/current/rung_replay.py 0 1 > rung_replay.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import optuna

from autostudent.early_stopping import SIZE_BAND, nondominated_fronts, rung_order

HERE = Path(__file__).resolve().parent
RUNG = 3  # the study file's grace_period: MO-ASHA's only rung below 6 epochs


def replay(seed: int) -> dict:
    study = optuna.load_study(
        study_name=f"fashion-mnist-e40-cap40-current-seed{seed}",
        storage=f"sqlite:///{HERE}/seed{seed}/seed{seed}.db",
    )
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]

    def arrival(t: optuna.trial.FrozenTrial) -> float:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        return t.datetime_start.timestamp() + seconds * RUNG / t.user_attrs["epochs"]

    recorded: list[np.ndarray] = []
    stops = []
    for t in sorted(finished, key=arrival):
        accuracy, params = t.user_attrs["curve"][RUNG - 1], t.user_attrs["params"]
        costs = np.array([-accuracy, math.log10(params)])
        recorded.append(costs)
        rung = np.stack(recorded)
        band = np.flatnonzero(np.abs(rung[:, 1] - costs[1]) <= math.log10(SIZE_BAND))
        near, row = rung[band], len(band) - 1
        position, kept = int(rung_order(near)[row]), math.ceil(len(near) / 2)
        if position < kept:
            continue
        first_front = row in nondominated_fronts(near)[0]
        better = [  # the band's trials that dominate the arrival at the rung
            int(band[i]) for i in range(len(near) - 1)
            if near[i, 0] <= costs[0] and near[i, 1] <= costs[1] and (near[i] < costs).any()
        ]  # fmt: skip
        stops.append({
            "trial": t.number,
            "params": params,
            "accuracy_at_rung": round(accuracy, 4),
            "band_size": len(near),
            "position": position,
            "kept": kept,
            "why": "tie on the first front, decided by arrival" if first_front
            else f"dominated in its size band by {len(better)} trial(s)",
        })  # fmt: skip
    pruned = sorted(t.number for t in finished if t.state.name == "PRUNED")
    return {
        "seed": seed,
        "finished": len(finished),
        "pruned": pruned,
        "matches": sorted(s["trial"] for s in stops) == pruned,
        "stops": stops,
    }


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(json.dumps([replay(int(s)) for s in sys.argv[1:]], indent=1))
