"""How sure is the 40-epoch teacher of the images export distils on? (issue 16, KD diagnosis)

Decoupled KD's argument is that a teacher near-certain of the label passes little dark
knowledge through classic KD. This prints, for the teacher's outputs on export's full training
split (the product's own cached outputs, computed if absent: one teacher pass), split into the
part the teacher was trained on and the validation part it never saw: its accuracy, the mean
and median probability it gives the label at T 1 and T 4, the share of images where that
probability exceeds 0.99, and the non-target classes' share of the mass at T 4 (what classic
KD's NCKD term is weighted by). No student is trained and the test split is not read.

    .venv/bin/python studies/results/students_e40_cap10/kd_decoupled/teacher_confidence.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from autostudent.datasets import load_data
from autostudent.retrain import full_training_split
from autostudent.teacher import TeacherSource, load_teacher
from autostudent.teacher_outputs import teacher_outputs

ROOT = Path(__file__).resolve().parents[4]
TEACHER = ROOT / "studies/results/teacher_e40/fashion_mnist_resnet8_e40.pt2"


def describe(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    out = {"images": len(labels), "accuracy": (logits.argmax(1) == labels).float().mean().item()}
    for t in (1, 4):
        p_target = torch.softmax(logits / t, 1).gather(1, labels[:, None]).squeeze(1)
        out[f"T{t}"] = {
            "p_target_mean": p_target.mean().item(),
            "p_target_median": p_target.median().item(),
            "share_p_target_over_0.99": (p_target > 0.99).float().mean().item(),
            "non_target_mass_mean": (1 - p_target).mean().item(),
        }
    return out


def main() -> None:
    # The search's data settings (round 4's study file): val 10 %, split seed 0.
    data = full_training_split(load_data("fashion-mnist", val_fraction=0.1, seed=0))
    teacher = load_teacher(TeacherSource(TEACHER))
    logits = teacher_outputs(teacher, data).logits.float()
    labels = torch.from_numpy(data.y_train).long()
    n_val = round(0.1 * len(labels))  # full_training_split puts validation last
    print(
        json.dumps(
            {
                "teacher": TEACHER.name,
                "trained_on": describe(logits[:-n_val], labels[:-n_val]),
                "validation": describe(logits[-n_val:], labels[-n_val:]),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
