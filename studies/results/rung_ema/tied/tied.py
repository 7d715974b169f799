"""A rung average whose decay follows the length of an epoch: does it read the rung at epoch 3
of 6 better than the model on a task of another epoch length? (README.md here: the design and
the rule, fixed before any run.)

The rule under test: the weight average spans 1/16 of an epoch, ``decay = 1 - 16 / steps``
(steps: optimizer steps an epoch): 0.898 at Fashion-MNIST 10K's 157 steps (where 0.9 was
measured, ``../epoch3``), 0.797 at 5K's 79, 0.111 at digits' 18 (about the model itself).
This reuses ``../epoch3/rung_epoch3.py`` whole — the same retrain, readings, replay and summary —
with this folder's populations, and the tied decay and 0.9 as the shadows it reads.

  .venv/bin/autostudent search studies/results/rung_ema/tied/fm5k.yaml --quiet
  .venv/bin/python studies/results/rung_ema/tied/tied.py --population fm5k --shard 0/2  # and 1/2
  .venv/bin/python studies/results/rung_ema/tied/tied.py --population digits --shard 0/2  # and 1/2
  .venv/bin/python studies/results/rung_ema/tied/tied.py --population fm5k --summary
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "epoch3")]
import rung_ema  # noqa: E402
import rung_epoch3  # noqa: E402

STEPS = {"fm5k": 79, "digits": 18}  # training.steps_per_epoch of 5,000 and 1,150 images, batch 64


def tied_decay(steps: int) -> float:
    return 1 - 16 / steps


# this folder's populations and shadows, in the functions of ../epoch3 (their module globals)
rung_epoch3.HERE = HERE
rung_epoch3.POPULATIONS = {
    "fm5k": (HERE / "fm5k.db", "fm5k", rung_epoch3.E40),
    "digits": rung_epoch3.POPULATIONS["digits"],
}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--population", required=True, choices=sorted(STEPS))
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--shard", default="0/1", help="i/n: measure the i-th of every n trials")
    args = ap.parse_args()
    rung_ema.DECAYS = (round(tied_decay(STEPS[args.population]), 4), 0.9)
    rung_epoch3.READERS = ("raw", *(f"ema{d:g}" for d in rung_ema.DECAYS))
    if not args.summary:
        i, n = (int(v) for v in args.shard.split("/"))
        rung_epoch3.run(args.population, (i, n))
    rung_epoch3.summarise(args.population)
