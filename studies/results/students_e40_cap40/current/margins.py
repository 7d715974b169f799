"""Round 5, one search seed: the exported ≤ 1/40 student against the best hand-designed student
of at most its params, by the rules fixed in README.md before any run: over this study's
baselines (both families sized to the student), round 3's (``..``) and round 2's
(``../../students_e40``), the same teacher and recipe. The headline is the lowest of the three.
Prints the seed's summary.json; run_seed.sh's last step. A later round of the same design
(``../rungauto``) passes its folder, which holds its study file and seeds.

  .venv/bin/python studies/results/students_e40_cap40/current/margins.py SEED [ROUND_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROUND3 = HERE.parent
ROUND2 = ROUND3.parent / "students_e40"
sys.path.insert(0, str(ROUND2))
from exports import RECIPE, over, student  # noqa: E402  (round 2's: one way to read an export)


def study_name(round_dir: Path, seed: int) -> str:
    """A seed's study: its round's study file's name and the seed (as run_seed.sh names it)."""
    (path,) = round_dir.glob("*.yaml")
    return f"{yaml.safe_load(path.read_text())['study']}-seed{seed}"


def main(seed: int, round_dir: Path = HERE) -> dict:
    here = round_dir / f"seed{seed}"
    metrics = json.loads((here / "export-7701" / "metrics.json").read_text())
    command = f"studies/results/students_e40_cap40/current/run_seed.sh {seed}"
    if round_dir != HERE:
        command = f"ROUND={round_dir.relative_to(ROUND3.parents[2])} {command}"
    baselines = {  # where hand-designed students of this teacher and recipe are stored
        "this_study": (here / f"seed{seed}.db", study_name(round_dir, seed)),
        "round3": (ROUND3 / "cap40.db", "fashion-mnist-e40-cap40"),
        "round2": (ROUND2 / "fashion_mnist_e40.db", "fashion-mnist-evidence-e40"),
    }
    margins = {k: over(db, name, metrics) for k, (db, name) in baselines.items()}
    values = [m["margin_pt"] for m in margins.values() if m["margin_pt"] is not None]
    return {
        "teacher_fraction": 40,
        "max_params": 7701,
        "search_seed": seed,
        "student": student(metrics),
        "recipe": RECIPE,
        "headline_margin_pt": min(values, default=None),
        "margins": margins,
        "export_versus_baseline": metrics["versus_baseline"],
        "commands": [command],
    }


if __name__ == "__main__":
    round_dir = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else HERE
    print(json.dumps(main(int(sys.argv[1]), round_dir), indent=2))
