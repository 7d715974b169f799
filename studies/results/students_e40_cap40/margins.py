"""Round 3's figures, by the rules fixed in README.md before any run: the exported ≤ 1/40 student
against the best hand-designed student of at most its size, over this study's baselines (the
headline: export's own ``versus_baseline``) and over round 2's (same teacher, same recipe, the
KD settings of round 2's search). Prints summary.json; run.sh's last step.

  cd studies/results/students_e40_cap40 && ../../../.venv/bin/python margins.py > summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUND2 = HERE.parent / "students_e40"
sys.path.insert(0, str(ROUND2))
from exports import RECIPE, over, student  # noqa: E402  (round 2's: one way to read an export)

COMMANDS = [
    "studies/results/students_e40_cap40/run.sh",
    "autostudent search studies/results/students_e40_cap40/fashion_mnist_e40_cap40.yaml",
    "autostudent baselines --storage sqlite:///studies/results/students_e40_cap40/cap40.db "
    "--study fashion-mnist-e40-cap40 --sizes auto --no-students --seeds 3 --epochs 5 "
    "--workers 2 --threads 1",
    "autostudent export --storage sqlite:///studies/results/students_e40_cap40/cap40.db "
    "--study fashion-mnist-e40-cap40 --pick max-accuracy-under:7701 --rerank 3 --rerank-seeds 3 "
    "--epochs 5 --seeds 3 --threads 1 --out studies/results/students_e40_cap40/export-7701",
    # then the families sized to the exported student, {params}: run.sh's step 3b
    "autostudent baselines --storage sqlite:///studies/results/students_e40_cap40/cap40.db "
    "--study fashion-mnist-e40-cap40 --sizes {params} --no-students --seeds 3 --epochs 5 "
    "--workers 2 --threads 1",
]


def main() -> dict:
    metrics = json.loads((HERE / "export-7701" / "metrics.json").read_text())
    return {
        "teacher_fraction": 40,
        "student": student(metrics),
        "recipe": RECIPE,
        # this study's baselines, the families sized to the front and to the student itself
        "headline": over(HERE / "cap40.db", "fashion-mnist-e40-cap40", metrics),
        # the export's own figure, made before the families were sized to the student
        "export_versus_baseline": metrics["versus_baseline"],
        "round2_baselines": over(
            ROUND2 / "fashion_mnist_e40.db", "fashion-mnist-evidence-e40", metrics
        ),
        "commands": [c.format(params=metrics["params"]) for c in COMMANDS],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
