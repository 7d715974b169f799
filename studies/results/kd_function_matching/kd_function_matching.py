"""Function matching (Beyer et al. 2022) against Hinton's KD, short and patient, on 2,000 images.

The design, fixed before any run, is in README.md. Each run retrains round 4's exported
≤ 1/10 student (``../students_e40_cap10/export-30807/spec.json``, 16,949 params) from scratch on
a 2,000-image class-stratified subset of the search's training split with export's recipe
(batch 64, lr 0.05, weight decay 5e-4, one-cycle SGD, one thread), with KD or without it, and
measures it on the 10,000 test images (read only to report). Arms (``ARMS``):

- ``hinton``: ``--augment none``, KL at T 4, α 0.9 (the best loss measured on the full data);
- ``function_matching``: ``--augment mixup`` (crop + flip + mixup, the teacher run on every
  mixed image), KL at T 1, α 1 (no label term), as Beyer et al. distil.

The no-KD run of an arm has the arm's augmentation (none; crop + flip + mixup with the same
seed's crops and mixes). Every run is appended to ``runs.jsonl`` as it ends; a rerun skips the
runs there (read again before each run), so the script resumes, and two processes may share
the file (one may still repeat a run the other is training: the same seed gives the same result).

    .venv/bin/python studies/results/kd_function_matching/kd_function_matching.py \
        --phase 1 --seeds 0 1 2
    .venv/bin/python studies/results/kd_function_matching/kd_function_matching.py --summary
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from autostudent.datasets import load_data, unit_test_split
from autostudent.export import _stats  # export's mean ± sd, as in its metrics.json
from autostudent.retrain import retrain
from autostudent.teacher import TeacherSource, load_teacher
from autostudent.teacher_outputs import teacher_outputs
from autostudent.training import accuracy
from autostudent.trial import Budget, KDSettings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SPEC = HERE.parent / "students_e40_cap10" / "export-30807" / "spec.json"
TEACHER = HERE.parent / "teacher_e40" / "fashion_mnist_resnet8_e40.pt2"
TEACHER_TEST_ACCURACY = 0.9431  # ../students_e40/teacher.json
TRAIN_IMAGES = 2000
ARMS = {
    "hinton": ("none", KDSettings("kd", 4.0, 0.9)),
    "function_matching": ("mixup", KDSettings("kd", 1.0, 1.0)),
}
# phase -> (epochs, arms), most informative first (README.md)
PHASES = {
    1: (30, ("function_matching", "hinton")),
    2: (300, ("function_matching",)),
    3: (300, ("hinton",)),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", type=int, choices=sorted(PHASES), action="append")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--summary", action="store_true", help="only write summary.json")
    ap.add_argument("--out", type=Path, default=HERE / "runs.jsonl")
    args = ap.parse_args()
    if args.summary:
        summarise(args.out)
        return
    torch.set_num_threads(1)
    spec = json.loads(SPEC.read_text())
    data = load_data("fashion-mnist", val_fraction=0.1, seed=0, train_subset=TRAIN_IMAGES)
    test = unit_test_split("fashion-mnist")
    mean = torch.tensor(data.mean).reshape(1, -1, 1, 1)
    std = torch.tensor(data.std).reshape(1, -1, 1, 1)
    test_x = (torch.from_numpy(test.x) - mean) / std  # the students train on normalised images
    teacher = load_teacher(TeacherSource(TEACHER))
    outputs = teacher_outputs(teacher, data)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    for phase in args.phase or sorted(PHASES):
        epochs, arms = PHASES[phase]
        for arm in arms:
            mode, kd = ARMS[arm]
            for seed in args.seeds:
                for with_kd in (True, False):
                    row = {"arm": arm, "epochs": epochs, "seed": seed, "kd": with_kd}
                    # read again before every run: another process may have landed it
                    if _key(row) in {_key(r) for r in _rows(args.out)}:
                        continue
                    trained = retrain(
                        spec, data, kd=kd if with_kd else None, outputs=outputs,
                        teacher=teacher, budget=Budget(epochs=epochs, batch_size=64, lr=0.05),
                        seed=seed, augment_with=mode, label=f"{arm} {epochs} ep kd={with_kd}",
                        plain_progress=True,
                    )  # fmt: skip
                    row |= {
                        "test_accuracy": accuracy(trained.model, test_x, test.y),
                        "augment": mode, "kd_settings": vars(kd) if with_kd else None,
                        "train_images": len(data.x_train), "batch_size": 64, "lr": 0.05,
                        "weight_decay": 5e-4, "threads": 1, "phase": phase,
                        "retrain_seconds": trained.seconds, "cpu_seconds": trained.cpu_seconds,
                        "commit": commit, "command": " ".join(sys.argv),
                        "torch": torch.__version__, "machine": platform.machine(),
                    }  # fmt: skip
                    with args.out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    summarise(args.out)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _key(row: dict) -> tuple:
    return row["arm"], row["epochs"], row["seed"], row["kd"]


def summarise(path: Path) -> None:
    """summary.json: per arm and epochs, KD and no-KD mean ± sd over the seeds both have, the
    paired gain and the share of the no-KD student's gap to the teacher the gain closes."""
    runs = {_key(r): r["test_accuracy"] for r in _rows(path)}
    out = []
    for arm, epochs in sorted({(a, e) for a, e, _, _ in runs}):
        seeds = sorted(s for a, e, s, kd in runs if (a, e, kd) == (arm, epochs, True)
                       and (arm, epochs, s, False) in runs)  # fmt: skip
        kd = [runs[arm, epochs, s, True] for s in seeds]
        no_kd = [runs[arm, epochs, s, False] for s in seeds]
        gains = [a - b for a, b in zip(kd, no_kd, strict=True)]
        gap = TEACHER_TEST_ACCURACY - statistics.fmean(no_kd) if seeds else None
        out.append(
            {
                "arm": arm, "augment": ARMS[arm][0], "kd_settings": vars(ARMS[arm][1]),
                "epochs": epochs, "train_images": TRAIN_IMAGES, "seeds": seeds,
                "kd": _stats(kd), "no_kd": _stats(no_kd), "kd_gain": _stats(gains),
                "teacher_test_accuracy": TEACHER_TEST_ACCURACY,
                "gap_closed": statistics.fmean(gains) / gap if seeds else None,
            }
        )  # fmt: skip
    (path.parent / "summary.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
