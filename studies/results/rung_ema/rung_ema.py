"""Do the search's early rungs rank students, and would a weight average (EMA) rank them better?

MO-ASHA stops a trial on its validation accuracy after epoch 1 (and 2) of 3. The trial's
one-cycle schedule is then near its peak learning rate (~0.97 of it after epoch 1, ~0.41
after epoch 2), so that accuracy measures a model in mid-stride: in the round-2 demo search
(``../students_e40``) epoch-1 accuracies ran from 16 to 71 % and jumped by up to 25 points
by epoch 3. An exponential moving average of the weights (Polyak averaging; BatchNorm's
running statistics averaged alike) is a standard way to read a model trained at a high rate.

Design, fixed on 2026-12-03 before any run:

- **Population**: every trial of the round-2 demo search that built an architecture (40): its
  spec, KD settings and seed (the trial's ``arch_seed``, as the search trained it) and the
  search's budget (3 epochs, 10,000 training images, batch 64, lr 0.05), its validation split.
- Each is trained all 3 epochs (nothing stopped), one thread. After each epoch the raw model
  and EMA shadows with decays 0.9, 0.99 and 0.998 (horizons of ~10, 100 and 500 steps; 156
  steps an epoch) are measured on the rung's 2,000 validation images; after epoch 3 the raw
  model also on all 6,000.
- **Shorter schedules, annealed**: the same student also trained with the whole one-cycle
  schedule in 1 epoch and in 2 (10,000 and 20,000 images), each measured at its end on the
  2,000 rung images: what a successive-halving rung would read if each rung's budget were a
  complete schedule.
- **Target**: the raw model's accuracy after epoch 3 on all 6,000 validation images (what the
  search's last rung records; for the trials that completed it should reproduce the stored
  ``val_accuracy``). Also reported: the final-fidelity test mean of the students
  ``bench students`` retrained (``../students_e40/runs``).
- **Measures**: Kendall tau and Spearman rho between each rung reading (epoch 1, 2; raw and each
  decay; the annealed 1- and 2-epoch schedules; 2,000 images) and the target; and of the
  target's best 10, how many a "keep the top half" cut on that reading keeps. And the readings'
  test-retest agreement: the search trained these very trials on another host (its stored
  curve), so each epoch's reading there against the same reading here.
- **Rule**: an EMA decay earns a place in the search only if its epoch-1 τ beats the raw
  model's by ≥ 0.1 here and on a second task (the digits teacher of ``../coverage``) too.

The second task (``--population digits``) is the demo's settings against the ResNet-20 digits
teacher (``digits/``: its study file, teacher and search database; the study file names the
commands that made them). Every trial's readings are appended to ``runs-POPULATION.jsonl`` as it
ends (a rerun skips those there); ``--summary`` writes ``summary-POPULATION.json``.

  .venv/bin/python studies/results/rung_ema/rung_ema.py   # or, one a core: --shard 0/2, --shard 1/2
  .venv/bin/python studies/results/rung_ema/rung_ema.py --summary
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVIDENCE = HERE.parent / "students_e40"
# population → (its search's database, study name, its teacher: the database stores the path
# the search was run with, which need not exist in another checkout)
POPULATIONS = {
    "e40": (
        EVIDENCE / "fashion_mnist_e40.db",
        "fashion-mnist-evidence-e40",
        HERE.parent / "teacher_e40" / "fashion_mnist_resnet8_e40.pt2",
    ),
    "digits": (
        HERE / "digits" / "digits.db",
        "digits-r20",
        HERE / "digits" / "digits_resnet20.pt2",
    ),
}
DECAYS = (0.9, 0.99, 0.998)
RUNG_IMAGES = 2000


def train_one(trial, p, outputs, epochs: int | None = None) -> tuple[list[dict], object]:
    """Train ``trial``'s student as the search did, over ``epochs`` (default: the budget's) with
    the whole schedule; the readings after every epoch, and the trained model."""
    import torch

    from autostudent.losses import kd_loss
    from autostudent.student import build_student
    from autostudent.training import WeightAverage, accuracy, sgd, steps_per_epoch
    from autostudent.trial import distill_epoch, kd_objective, teacher_feed

    b = p.config.budget
    epochs = epochs or b.epochs
    seed = int(trial.user_attrs["arch_seed"])
    kd = _kd(trial)
    torch.manual_seed(seed)
    model = build_student(trial.user_attrs["spec"])
    loss = kd_loss(kd.loss)
    x, y = torch.from_numpy(p.data.x_train), torch.from_numpy(p.data.y_train)
    gen = torch.Generator().manual_seed(seed)
    feed = teacher_feed(outputs, x, torch.device("cpu"), loss.needs_features, gen)
    opt = sgd(model, b.lr, b.weight_decay, epochs * steps_per_epoch(len(x), b.batch_size))
    # the product's rung average (training.WeightAverage; the runs here used this script's copy
    # of it, the same arithmetic, before it moved into the package)
    shadows = [WeightAverage(model, d) for d in DECAYS]

    def on_step() -> None:
        for s in shadows:
            s.update()

    xv, yv = p.data.x_val, p.data.y_val
    readings = []
    for epoch in range(1, epochs + 1):
        distill_epoch(
            model, x, y, feed, kd_objective(kd), opt, b.batch_size, gen,
            features=loss.needs_features, epoch=epoch, on_step=on_step,
        )  # fmt: skip
        reading = {"epoch": epoch}
        for name, m in [("raw", model), *((f"ema{s.decay:g}", s.model) for s in shadows)]:
            reading[name] = accuracy(m.eval(), xv[:RUNG_IMAGES], yv[:RUNG_IMAGES])
        readings.append(reading)
    return readings, model


def _kd(trial):
    from autostudent.trial import KDSettings

    return KDSettings(
        trial.params["kd_loss"],
        float(trial.params["kd_temperature"]),
        float(trial.params["kd_alpha"]),
    )


def measure(trial, p, outputs) -> dict:
    from autostudent.training import accuracy

    readings, model = train_one(trial, p, outputs)
    annealed = {f"e{n}": train_one(trial, p, outputs, n)[0][-1]["raw"] for n in (1, 2)}
    kd = _kd(trial)
    return {
        "trial": trial.number,
        "state": trial.state.name,
        "params": trial.user_attrs["params"],
        "proposal": trial.user_attrs.get("proposal"),
        "stored_val_accuracy": trial.user_attrs.get("val_accuracy"),
        "stored_curve": trial.user_attrs.get("curve"),
        "seed": int(trial.user_attrs["arch_seed"]),
        "kd": {"loss": kd.loss, "temperature": kd.temperature, "alpha": kd.alpha},
        "epochs": readings,
        "annealed": annealed,
        "target": accuracy(model.eval(), p.data.x_val, p.data.y_val),
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
    }


def run(population: str, shard: tuple[int, int] = (0, 1)) -> None:
    """Measure every trial of ``population`` not in its runs file yet; ``shard`` (i, n): only
    the i-th of every n, so that n processes (one a core) share the population."""
    import sqlite3
    import tempfile

    import torch

    from autostudent import study as studydb
    from autostudent.config import StudyConfig
    from autostudent.driver import prepare
    from autostudent.teacher_outputs import default_cache_dir, teacher_outputs

    torch.set_num_threads(1)
    out = HERE / f"runs-{population}.jsonl"
    db, name, teacher = POPULATIONS[population]
    done = {json.loads(line)["trial"] for line in out.open()} if out.exists() else set()
    tmp = Path(tempfile.mkdtemp(prefix="rung_ema-")) / "db.sqlite"
    with sqlite3.connect(db) as src, sqlite3.connect(tmp) as dst:
        src.backup(dst)  # the evidence may be written meanwhile
    study = studydb.load(f"sqlite:///{tmp}", name)
    config = StudyConfig.model_validate(study.user_attrs["config"])
    teacher_config = config.teacher.model_copy(update={"path": teacher})
    config = config.model_copy(update={"storage": f"sqlite:///{tmp}", "teacher": teacher_config})
    p = prepare(config)
    trials = [t for t in study.trials if "spec" in t.user_attrs and "kd_loss" in t.params]
    outputs = teacher_outputs(p.teacher, p.data, config.cache_dir or default_cache_dir())
    for t in trials[shard[0] :: shard[1]]:
        if t.number in done:
            continue
        record = measure(t, p, outputs)
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        last = record["target"]
        print(f"trial {t.number:>2} ({record['params']:>6,}): epoch 3 {last:.4f}", flush=True)


def summarise(population: str) -> None:
    from scipy.stats import kendalltau, spearmanr

    runs = [json.loads(line) for line in (HERE / f"runs-{population}.jsonl").open()]
    target = [r["target"] for r in runs]
    best10 = set(sorted(range(len(runs)), key=lambda i: -target[i])[:10])
    readers = ["raw", *(f"ema{d:g}" for d in DECAYS)]
    rows = []
    cases = [
        (f"epoch {e}", n, lambda r, e=e, n=n: r["epochs"][e - 1][n])
        for e in (1, 2)
        for n in readers
    ]
    cases += [(f"annealed in {n}", "raw", lambda r, n=n: r["annealed"][f"e{n}"]) for n in (1, 2)]
    for when, name, read in cases:
        reading = [read(r) for r in runs]
        kept = set(sorted(range(len(runs)), key=lambda i: -reading[i])[: len(runs) // 2])
        rows.append({
            "reading": when, "reader": name,
            "kendall_tau": float(kendalltau(reading, target).statistic),
            "spearman_rho": float(spearmanr(reading, target).statistic),
            "best10_kept_by_top_half": len(best10 & kept),
        })  # fmt: skip
    final = _final_means() if population == "e40" else {}
    paired = [
        (t, final[r["trial"]]) for r, t in zip(runs, target, strict=True) if r["trial"] in final
    ]
    repro = [abs(r["target"] - r["stored_val_accuracy"]) for r in runs if r["state"] == "COMPLETE"]
    retest = []
    for e in (1, 2, 3):
        pairs = [
            (r["stored_curve"][e - 1], r["epochs"][e - 1]["raw"] if e < 3 else r["target"])
            for r in runs
            if r["stored_curve"] and len(r["stored_curve"]) >= e
        ]
        if len(pairs) > 2:
            a, b = zip(*pairs, strict=True)
            retest.append({
                "epoch": e, "n": len(pairs),
                "kendall_tau": float(kendalltau(a, b).statistic),
                "mean_abs_diff_pt": 100 * sum(abs(u - v) for u, v in pairs) / len(pairs),
            })  # fmt: skip
    out = {
        "n_trials": len(runs),
        "test_retest": retest,
        "target": "raw model, epoch 3, all validation images",
        "rungs": rows,
        "epoch3_vs_final_test": {
            "n": len(paired),
            "kendall_tau": float(kendalltau(*zip(*paired, strict=True)).statistic)
            if len(paired) > 2
            else None,
        },
        "reproduced_complete_trials_max_abs_diff": max(repro) if repro else None,
        "command": "studies/results/rung_ema/rung_ema.py " + " ".join(sys.argv[1:]),
    }
    (HERE / f"summary-{population}.json").write_text(json.dumps(out, indent=1) + "\n")
    for r in retest:
        print(f"test-retest, epoch {r['epoch']} (n {r['n']}): tau {r['kendall_tau']:.3f}, "
              f"mean |diff| {r['mean_abs_diff_pt']:.1f} pt")  # fmt: skip
    for r in rows:
        print(
            f"{r['reading']:>14} {r['reader']:>9}: tau {r['kendall_tau']:.3f}  "
            f"rho {r['spearman_rho']:.3f}  best-10 kept by a top-half cut "
            f"{r['best10_kept_by_top_half']}"
        )


def _final_means() -> dict[int, float]:
    """Trial → mean test accuracy of its final-fidelity KD runs (bench students)."""
    import statistics

    acc: dict[int, list[float]] = {}
    for f in (EVIDENCE / "runs").glob("searched-*.json"):
        r = json.loads(f.read_text())
        if r["kd"] is not None:
            acc.setdefault(r["trial"], []).append(r["test_accuracy"])
    return {t: statistics.fmean(v) for t, v in acc.items()}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--population", default="e40", choices=sorted(POPULATIONS))
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--shard", default="0/1", help="i/n: measure the i-th of every n trials")
    args = ap.parse_args()
    if not args.summary:
        i, n = (int(v) for v in args.shard.split("/"))
        run(args.population, (i, n))
    summarise(args.population)
