"""Round 3's figures, by the rules fixed in README.md before any run: the exported ≤ 1/40 student
against the best hand-designed student of at most its size, over this study's baselines (the
headline: export's own ``versus_baseline``) and over round 2's (same teacher, same recipe, the
KD settings of round 2's search). Prints summary.json; run.sh's last step.

  cd studies/results/students_e40_cap40 && ../../../.venv/bin/python margins.py > summary.json
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUND2 = HERE.parent / "students_e40"
COMMANDS = [
    "studies/results/students_e40_cap40/run.sh",
    "autostudent search studies/results/students_e40_cap40/fashion_mnist_e40_cap40.yaml",
    "autostudent baselines --storage sqlite:///studies/results/students_e40_cap40/cap40.db "
    "--study fashion-mnist-e40-cap40 --sizes auto --no-students --seeds 3 --epochs 5 "
    "--workers 2 --threads 1",
    "autostudent export --storage sqlite:///studies/results/students_e40_cap40/cap40.db "
    "--study fashion-mnist-e40-cap40 --pick max-accuracy-under:7701 --rerank 3 --epochs 5 "
    "--seeds 3 --threads 1 --out studies/results/students_e40_cap40/export-7701",
]


# export's recipe as the rules fix it (the study's batch, lr and weight decay; 5 epochs)
RECIPE = {"epochs": 5, "batch_size": 64, "lr": 0.05, "weight_decay": 0.0005, "augment": "none"}


def _baselines(db: Path, study_name: str) -> list[dict]:
    from autostudent import study as studydb
    from autostudent.final_runs import groups, stored

    study = studydb.load(f"sqlite:///{db}", study_name)
    return groups(stored(study).values())


def main() -> dict:
    from autostudent.baselines import baseline_summary, best_baseline

    metrics = json.loads((HERE / "export-7701" / "metrics.json").read_text())
    vs = metrics["versus_baseline"]
    mean = metrics["test_accuracy_mean"]
    student = {
        "trial": metrics["trial"],
        "params": metrics["params"],
        "mean": mean,
        "sd": metrics["test_accuracy_sd"],
        "seeds": metrics["seeds"]["seeds"],
        "kd": metrics["kd"],
        "kd_gain": metrics["kd_gain"],
        "rerank": metrics.get("rerank"),
    }
    recipe = RECIPE
    assert (metrics["epochs"], metrics["batch_size"], metrics["lr"]) == (5, 64, 0.05), metrics

    def over(db: Path, study_name: str) -> dict:
        best = best_baseline(_baselines(db, study_name), metrics["params"], recipe)
        return {
            "baseline": None if best is None else baseline_summary(best),
            "margin_pt": None if best is None else 100 * (mean - best["test_accuracy_mean"]),
        }

    return {
        "teacher_fraction": 40,
        "student": student,
        "recipe": recipe,
        # this study's baselines, the families sized to the front and to the student itself
        "headline": over(HERE / "cap40.db", "fashion-mnist-e40-cap40"),
        # the export's own figure, made before the families were sized to the student
        "export_versus_baseline": vs,
        "round2_baselines": over(ROUND2 / "fashion_mnist_e40.db", "fashion-mnist-evidence-e40"),
        "commands": COMMANDS,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
