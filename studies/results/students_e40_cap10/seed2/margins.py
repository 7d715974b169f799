"""Round 4, seed 2: seed 1's margins (``../seed1/margins.py``) over this study's baselines,
round 4 seed 0's, seed 1's and round 2's; the headline is the lowest. Prints summary.json;
run.sh's last step.

  .venv/bin/python studies/results/students_e40_cap10/seed2/margins.py
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "seed1_margins", HERE.parent / "seed1" / "margins.py"
)
seed1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed1)

BASELINES = {
    "this_study": (HERE / "seed2.db", "fashion-mnist-e40-cap10-seed2"),
    **{k: v for k, v in seed1.BASELINES.items() if k != "this_study"},
    "round4_seed1": seed1.BASELINES["this_study"],
}

if __name__ == "__main__":
    summary = seed1.main(HERE, 2, BASELINES, ["studies/results/students_e40_cap10/seed2/run.sh"])
    print(json.dumps(summary, indent=2))
