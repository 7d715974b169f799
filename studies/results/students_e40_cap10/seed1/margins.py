"""Round 4, seed 1: the exported ≤ 1/10 student against the best hand-designed student of at
most its params, by the rules fixed in README.md before any run: over this study's baselines
(both families sized to the student), round 4 seed 0's and round 2's (the same teacher and
recipe). The headline is the lowest of the three margins. Prints summary.json; run.sh's last
step.

  .venv/bin/python studies/results/students_e40_cap10/seed1/margins.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUND4 = HERE.parent
ROUND2 = ROUND4.parent / "students_e40"
sys.path.insert(0, str(ROUND2))
from exports import RECIPE, over, student  # noqa: E402  (round 2's: one way to read an export)

STUDY = "fashion-mnist-e40-cap10-seed1"
BASELINES = {  # where hand-designed students of this teacher and recipe are stored
    "this_study": (HERE / "seed1.db", STUDY),
    "round4_seed0": (ROUND4 / "cap10.db", "fashion-mnist-e40-cap10"),
    "round2": (ROUND2 / "fashion_mnist_e40.db", "fashion-mnist-evidence-e40"),
}


def main(
    here: Path = HERE, search_seed: int = 1, baselines: dict = BASELINES, commands=None
) -> dict:
    metrics = json.loads((here / "export-30807" / "metrics.json").read_text())
    margins = {k: over(db, name, metrics) for k, (db, name) in baselines.items()}
    values = [m["margin_pt"] for m in margins.values() if m["margin_pt"] is not None]
    return {
        "teacher_fraction": 10,
        "max_params": 30807,
        "search_seed": search_seed,
        "student": student(metrics),
        "recipe": RECIPE,
        "headline_margin_pt": min(values, default=None),
        "margins": margins,
        "export_versus_baseline": metrics["versus_baseline"],
        "commands": commands or ["studies/results/students_e40_cap10/seed1/run.sh"],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
