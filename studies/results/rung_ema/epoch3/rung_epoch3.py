"""Does a short weight average read MO-ASHA's rung at epoch 3 of 6 better than the model does?

The design and the rule, fixed before any run, are in README.md here. Each trial of a search
with the demo's current settings (6 epochs, one MO-ASHA rung at epoch 3, 2,000 rung images) is
trained all 6 epochs exactly as the search trained it (``../rung_ema.py``'s ``train_one``: its
spec, KD settings, seed and budget), reading the raw model and EMA shadows (decays 0.9, 0.99,
0.998) on the rung's images after every epoch; the target is the raw model after epoch 6 on all
validation images (what the search records as a complete trial's accuracy).

Two summaries per population: the Kendall τ of each epoch-3 reading against the target (the
rule's), and a replay of the product's own rung (``early_stopping.rung_order`` over the
arrival's size band, gap proposals recorded but never stopped, as ``search.prune_gap_proposals:
false``) in the order the trials reached epoch 3 in the search, once with each reading: which
trials it stops, and how many of the target's Pareto front (target accuracy vs params, over the
population) are among them. The replay is a counterfactual: the sampler would have proposed
other trials after a different stop.

  .venv/bin/python studies/results/rung_ema/epoch3/rung_epoch3.py --population e40 --shard 0/2
  .venv/bin/python studies/results/rung_ema/epoch3/rung_epoch3.py --population e40 --summary
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from rung_ema import DECAYS, _kd, train_one  # noqa: E402

RUNG = 3  # the demo's grace_period: MO-ASHA's only rung below 6 epochs
E40 = RESULTS / "teacher_e40" / "fashion_mnist_resnet8_e40.pt2"
DIGITS = RESULTS / "rung_ema" / "digits" / "digits_resnet20.pt2"
CAP40 = RESULTS / "students_e40_cap40" / "current"
# population → (database, study, teacher); the rule reads e40 and digits, cap40-* are reported
POPULATIONS = {
    "e40": (RESULTS / "coverage" / "gapfull" / "e40.db", "e40-gapfull-seed0", E40),
    "digits": (RESULTS / "coverage" / "gapfull" / "digits.db", "digits-gapfull-seed0", DIGITS),
    **{
        f"cap40-seed{s}": (
            CAP40 / f"seed{s}" / f"seed{s}.db", f"fashion-mnist-e40-cap40-current-seed{s}", E40
        )
        for s in (1, 2)
    },
}  # fmt: skip
READERS = ("raw", *(f"ema{d:g}" for d in DECAYS))


def run(population: str, shard: tuple[int, int]) -> None:
    import torch

    from autostudent import study as studydb
    from autostudent.config import StudyConfig
    from autostudent.driver import prepare
    from autostudent.teacher_outputs import default_cache_dir, teacher_outputs
    from autostudent.training import accuracy

    torch.set_num_threads(1)
    out = HERE / f"runs-{population}.jsonl"
    db, name, teacher = POPULATIONS[population]
    done = {json.loads(line)["trial"] for line in out.open()} if out.exists() else set()
    tmp = Path(tempfile.mkdtemp(prefix="rung_epoch3-")) / "db.sqlite"
    with sqlite3.connect(db) as src, sqlite3.connect(tmp) as dst:
        src.backup(dst)  # read a copy: nothing here writes the evidence
    study = studydb.load(f"sqlite:///{tmp}", name)
    config = StudyConfig.model_validate(study.user_attrs["config"])
    teacher_config = config.teacher.model_copy(update={"path": teacher})
    config = config.model_copy(update={"storage": f"sqlite:///{tmp}", "teacher": teacher_config})
    p = prepare(config)
    outputs = teacher_outputs(p.teacher, p.data, config.cache_dir or default_cache_dir())
    trials = [t for t in study.trials if "spec" in t.user_attrs and "kd_loss" in t.params]
    for t in trials[shard[0] :: shard[1]]:
        if t.number in done:
            continue
        readings, model = train_one(t, p, outputs)
        seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        kd = _kd(t)
        record = {
            "trial": t.number,
            "state": t.state.name,
            "params": t.user_attrs["params"],
            "proposal": t.user_attrs.get("proposal"),
            # when it reached epoch 3 in the search: its start + 3/epochs of its time there
            "rung_arrival": t.datetime_start.timestamp() + seconds * RUNG / t.user_attrs["epochs"],
            "stored_curve": t.user_attrs.get("curve"),
            "stored_val_accuracy": t.user_attrs.get("val_accuracy"),
            "kd": {"loss": kd.loss, "temperature": kd.temperature, "alpha": kd.alpha},
            "epochs": readings,
            "target": accuracy(model.eval(), p.data.x_val, p.data.y_val),
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
        }
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        rung = readings[RUNG - 1]
        print(f"{population} trial {t.number:>2} ({record['params']:>6,}): epoch 3 raw "
              f"{rung['raw']:.4f} ema0.9 {rung['ema0.9']:.4f}, epoch 6 {record['target']:.4f}",
              flush=True)  # fmt: skip


def replay(runs: list[dict], reader: str) -> list[int]:
    """The trials the product's rung stops when it reads ``reader`` at epoch 3, in the search's
    arrival order; gap proposals are recorded but never stopped."""
    import numpy as np

    from autostudent.early_stopping import SIZE_BAND, rung_order

    recorded, stops = [], []
    for r in sorted(runs, key=lambda r: r["rung_arrival"]):
        recorded.append([-r["epochs"][RUNG - 1][reader], math.log10(r["params"])])
        rung = np.array(recorded)
        near = rung[np.abs(rung[:, 1] - rung[-1, 1]) <= math.log10(SIZE_BAND)]
        stopped = rung_order(near)[-1] >= math.ceil(len(near) / 2)
        if stopped and r["proposal"] != "gap":
            stops.append(r["trial"])
    return sorted(stops)


def summarise(population: str) -> dict:
    import numpy as np
    from scipy.stats import kendalltau, spearmanr

    from autostudent.early_stopping import nondominated_fronts

    runs = [json.loads(line) for line in (HERE / f"runs-{population}.jsonl").open()]
    target = [r["target"] for r in runs]
    costs = np.array([[-r["target"], math.log10(r["params"])] for r in runs])
    front = sorted(runs[i]["trial"] for i in nondominated_fronts(costs)[0])
    best10 = set(sorted(range(len(runs)), key=lambda i: -target[i])[:10])
    stored_stops = sorted(r["trial"] for r in runs if r["state"] == "PRUNED")
    readings = []
    for epoch in range(1, 6):
        for reader in READERS:
            reading = [r["epochs"][epoch - 1][reader] for r in runs]
            kept = set(sorted(range(len(runs)), key=lambda i: -reading[i])[: len(runs) // 2])
            row = {
                "epoch": epoch, "reader": reader,
                "kendall_tau": float(kendalltau(reading, target).statistic),
                "spearman_rho": float(spearmanr(reading, target).statistic),
                "best10_kept_by_top_half": len(best10 & kept),
            }  # fmt: skip
            if epoch == RUNG:
                stops = replay(runs, reader)
                on_front = sorted(set(stops) & set(front))
                row |= {"replay_stops": stops, "replay_stops_target_front": on_front}
            readings.append(row)
    complete = [r for r in runs if r["state"] == "COMPLETE"]
    summary = {
        "population": population,
        "study": POPULATIONS[population][1],
        "n_trials": len(runs),
        "target": "raw model after epoch 6 on all validation images",
        "target_front": front,
        "readings": readings,
        "search_stops": stored_stops,
        # the harness: the raw replay must stop what the search stopped, the retrains reproduce
        "raw_replay_matches_search": replay(runs, "raw") == stored_stops,
        "reproduced_complete_max_abs_diff": max(
            (abs(r["target"] - r["stored_val_accuracy"]) for r in complete), default=None
        ),
        "reproduced_rung_max_abs_diff": max(
            abs(r["epochs"][RUNG - 1]["raw"] - r["stored_curve"][RUNG - 1]) for r in runs
        ),
        "command": " ".join([_script(), *sys.argv[1:]]),
    }
    (HERE / f"summary-{population}.json").write_text(json.dumps(summary, indent=1) + "\n")
    for row in readings:
        if row["epoch"] == RUNG:
            stops, on_front = row["replay_stops"], row["replay_stops_target_front"]
            print(f"{population} epoch 3 {row['reader']:>8}: tau {row['kendall_tau']:.3f}  "
                  f"best-10 kept {row['best10_kept_by_top_half']}  replay stops {len(stops)}, "
                  f"on the front {on_front}")  # fmt: skip
    return summary


def _script() -> str:
    """The script that ran, from the repository's root (this one, or one that reuses it)."""
    return Path(sys.argv[0]).resolve().relative_to(RESULTS.parents[1]).as_posix()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--population", required=True, choices=sorted(POPULATIONS))
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--shard", default="0/1", help="i/n: measure the i-th of every n trials")
    args = ap.parse_args()
    if not args.summary:
        i, n = (int(v) for v in args.shard.split("/"))
        run(args.population, (i, n))
    summarise(args.population)
