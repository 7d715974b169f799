"""KD gain with and without consistent teaching (teacher outputs on K cached augmented views), at
equal epochs: export's recipe on the demo's searched student, one thread, several seeds.

The full experiment trains on the full training split (60,000 images, as export does); on a
busy 2-core machine a smaller one trains on the first N images of the training split
(``--train-subset N``, validation 2 % and never used). The teacher's own test accuracy is not
recomputed here (the test images are left out of the data given to the cache).

For each seed and mode, the same architecture is retrained from scratch with KD and without it
(the no-KD baseline of an augmenting mode gets the same crop-and-flip recipe, drawn afresh every
step) and measured on the 10,000 test images. Every run is appended to runs.jsonl as soon as it
ends (a rerun skips the runs already there), with its exact settings.

  PYTHONPATH=$PWD python studies/results/kd_views/kd_views.py --epochs 5 --seeds 0 1 2 \
      --modes none views --views 4 --out studies/results/kd_views/runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from autostudent.datasets import load_data, unit_test_split
from autostudent.retrain import full_training_split, retrain
from autostudent.teacher import TeacherSource, load_teacher
from autostudent.teacher_outputs import teacher_outputs
from autostudent.training import accuracy
from autostudent.trial import Budget, KDSettings

HERE = Path(__file__).resolve().parent
RESULT = HERE.parent / "fashion_mnist_30k"  # the demo's trial 17: spec and KD settings
TEACHER = HERE.parents[1] / "teachers" / "fashion_mnist_resnet8.pt2"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--modes", nargs="+", default=["none", "views"])
    ap.add_argument("--views", type=int, default=4, help="K of the views mode")
    ap.add_argument("--train-subset", type=int, default=None, help="a smoke run on fewer images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "runs.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    spec = json.loads((RESULT / "spec.json").read_text())
    m = json.loads((RESULT / "metrics.json").read_text())
    kd = KDSettings(m["kd"]["loss"], m["kd"]["temperature"], m["kd"]["alpha"])
    budget = Budget(epochs=args.epochs, batch_size=m["batch_size"], lr=m["lr"])
    if args.train_subset is None:
        data = full_training_split(load_data("fashion-mnist", val_fraction=0.1, seed=0))
    else:
        data = load_data("fashion-mnist", val_fraction=0.02, seed=0, train_subset=args.train_subset)
    # the teacher's test accuracy is known (92.82 %): not recomputed with every cache entry
    data = replace(data, x_test=None, y_test=None, identity=f"{data.identity}-notest")
    test = unit_test_split("fashion-mnist")
    mean = torch.tensor(data.mean).reshape(1, -1, 1, 1)
    std = torch.tensor(data.std).reshape(1, -1, 1, 1)
    test_x = (torch.from_numpy(test.x) - mean) / std  # the students train on normalised images
    teacher = load_teacher(TeacherSource(TEACHER))
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add(
                (r["mode"], r["views"], r["kd"] is not None, r["seed"], r["epochs"],
                 r["train_images"])
            )  # fmt: skip

    for mode in args.modes:
        k = args.views if mode == "views" else 0
        started = time.perf_counter()
        outputs = teacher_outputs(teacher, data, args.cache_dir, views=k)
        cache_s = time.perf_counter() - started
        for seed in args.seeds:
            for with_kd in (True, False):
                key = (mode, k, with_kd, seed, args.epochs, len(data.x_train))
                if key in done:
                    continue
                trained = retrain(
                    spec, data, kd=kd if with_kd else None, outputs=outputs, teacher=teacher,
                    budget=budget, seed=seed, augment_with=mode, label=f"{mode} kd={with_kd}",
                )  # fmt: skip
                acc = accuracy(trained.model, test_x, test.y)
                row = {
                    "mode": mode, "views": k, "seed": seed, "epochs": args.epochs,
                    "kd": None if not with_kd else vars(kd),
                    "test_accuracy": acc, "train_images": len(data.x_train),
                    "batch_size": budget.batch_size, "lr": budget.lr,
                    "retrain_seconds": trained.seconds, "view_cache_seconds": cache_s,
                    "threads": args.threads, "command": " ".join(sys.argv),
                    "torch": torch.__version__, "machine": platform.machine(),
                }  # fmt: skip
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    summarise(args.out)


def summarise(path: Path) -> None:
    """summary.json beside runs.jsonl: per (mode, K, epochs), KD and no-KD mean ± sd and the
    paired KD gain per seed."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["train_images"], r["mode"], r["views"], r["epochs"])
        g = groups.setdefault(key, {"kd": {}, "no_kd": {}})
        g["kd" if r["kd"] else "no_kd"][r["seed"]] = r["test_accuracy"]
    out = []
    for (images, mode, k, epochs), g in sorted(groups.items()):
        seeds = sorted(set(g["kd"]) & set(g["no_kd"]))
        gains = [g["kd"][s] - g["no_kd"][s] for s in seeds]
        out.append(
            {
                "train_images": images, "mode": mode, "views": k, "epochs": epochs,
                "seeds": seeds,
                "kd": _stats([g["kd"][s] for s in seeds]),
                "no_kd": _stats([g["no_kd"][s] for s in seeds]),
                "kd_gain": _stats(gains),
            }
        )  # fmt: skip
    (path.parent / "summary.json").write_text(json.dumps(out, indent=1) + "\n")


def _stats(values: list[float]) -> dict:
    return {
        "values": values,
        "mean": statistics.fmean(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else None,
    }


if __name__ == "__main__":
    main()
