"""Round 4's figures, by the rules fixed in README.md before any run: the exported ≤ 1/10
student against the best hand-designed student of at most its params, over this study's
baselines (both families sized to the student) and round 2's (the same teacher and recipe,
the families sized to round 2's front and exports). The headline is the margin over the best of
both. Prints summary.json; run.sh's last step.

  cd studies/results/students_e40_cap10 && ../../../.venv/bin/python margins.py > summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUND2 = HERE.parent / "students_e40"
sys.path.insert(0, str(ROUND2))
from exports import RECIPE, over, student  # noqa: E402  (round 2's: one way to read an export)

DB, STUDY = "cap10.db", "fashion-mnist-e40-cap10"
COMMANDS = [
    "studies/results/students_e40_cap10/run.sh",
    "autostudent search studies/results/students_e40_cap10/fashion_mnist_e40_cap10.yaml",
    f"autostudent export --storage sqlite:///studies/results/students_e40_cap10/{DB} "
    f"--study {STUDY} --pick max-accuracy-under:30807 --rerank 3 --rerank-seeds 3 --epochs 5 "
    "--seeds 3 --workers 2 --threads 1 --out studies/results/students_e40_cap10/export-30807",
    f"autostudent baselines --storage sqlite:///studies/results/students_e40_cap10/{DB} "
    f"--study {STUDY} --sizes P --no-students --seeds 3 --epochs 5 --workers 2 --threads 1",
]


def main() -> dict:
    metrics = json.loads((HERE / "export-30807" / "metrics.json").read_text())
    here = over(HERE / DB, STUDY, metrics)
    round2 = over(ROUND2 / "fashion_mnist_e40.db", "fashion-mnist-evidence-e40", metrics)
    margins = [m["margin_pt"] for m in (here, round2) if m["margin_pt"] is not None]
    return {
        "teacher_fraction": 10,
        "max_params": 30807,
        "student": student(metrics),
        "recipe": RECIPE,
        # the lower margin: over the best hand-designed student of at most its size in either
        "headline_margin_pt": min(margins, default=None),
        "this_study_baselines": here,
        "round2_baselines": round2,
        "export_versus_baseline": metrics["versus_baseline"],
        "commands": COMMANDS,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
