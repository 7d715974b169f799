"""How closely a function-matching export's students fit the teacher on the images they were
taught on: each retrain of an export's store (``.<out>.retrains/<key>.pt``, found by the key
export gives it) evaluated on the full 60,000-image training split, clean (no crop, flip or
mix). Reads the training split only, never the test split. Prints JSON.

  .venv/bin/python studies/results/students_e40_cap10/kd_capacity/fit.py TRIAL EPOCHS STORE

e.g. phase 1 of ``../kd_function_matching`` (its store is in git history; export removed it):
  S=studies/results/students_e40_cap10/kd_function_matching/.export-e100.retrains
  git archive 5e72c9d^ $S | tar -x -C /tmp
  .venv/bin/python studies/results/students_e40_cap10/kd_capacity/fit.py 8 100 /tmp/$S
phase 2 (``fit-e300.json``): ``fit.py 8 300`` on ``.export-e300.retrains`` from 4bca0aa (five
records) and no-KD seed 2's last record, copied out before export removed its store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from autostudent import study as studydb
from autostudent.driver import prepare
from autostudent.export import chosen_trial, parse_kd, study_config
from autostudent.retrains import Job, Splits
from autostudent.student import build_student

URL = "sqlite:///studies/results/students_e40_cap10/cap10.db"
STUDY = "fashion-mnist-e40-cap10"
KD, AUGMENT, SEEDS = "kd,1,1.0", "mixup", (0, 1, 2)  # the rounds' flags: --kd, --augment, --seeds


def logits(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[s : s + 256]).float() for s in range(0, len(x), 256)])


def fit(student: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor) -> dict:
    p_t = F.softmax(teacher, 1)
    kl = (p_t * (F.log_softmax(teacher, 1) - F.log_softmax(student, 1))).sum(1).mean()
    return {
        "train_accuracy": (student.argmax(1) == y).float().mean().item(),
        "agreement_with_teacher": (student.argmax(1) == teacher.argmax(1)).float().mean().item(),
        "kl_teacher_student_t1": kl.item(),
    }


def main(trial_number: int, epochs: int, store: Path) -> dict:
    torch.set_num_threads(1)
    study = studydb.load(URL, STUDY)
    trial = chosen_trial(study, trial_number, None)
    p = prepare(study_config(study, URL))
    splits = Splits(p, epochs=epochs, augment=AUGMENT, views=4)  # export's default; mixup has none
    data = splits.data[True]
    x = torch.as_tensor(data.x_train).contiguous(memory_format=torch.channels_last)
    y = torch.as_tensor(data.y_train)
    teacher = logits(lambda b: p.teacher.forward_with_features(b)[0], x)
    spec = trial.user_attrs["spec"]
    out = {
        "trial": trial_number,
        "epochs": epochs,
        "images": len(y),
        "teacher_train_accuracy": (teacher.argmax(1) == y).float().mean().item(),
        "runs": [],
    }
    for kd in (parse_kd(KD), None):
        for seed in SEEDS:
            key = splits.key(Job(spec, True, kd, seed, ""))
            path = store / f"{key}.pt"
            run = {"kd": kd is not None, "seed": seed, "key": key}
            if not path.exists():
                out["runs"].append({**run, "missing": str(path.name)})
                continue
            record = torch.load(path, weights_only=True)
            model = build_student(spec)
            model.load_state_dict(record["state"])
            model.eval()
            out["runs"].append({**run, **fit(logits(model, x), teacher, y)})
    return out


if __name__ == "__main__":
    trial_arg, epochs_arg, store_arg = sys.argv[1:4]
    print(json.dumps(main(int(trial_arg), int(epochs_arg), Path(store_arg)), indent=1))
