"""What a long training prints off a terminal: one line per epoch with the time left."""

from __future__ import annotations

import io

from rich.console import Console

from autostudent.progress import TrainingProgress


def test_each_epoch_line_says_how_long_the_rest_takes_at_the_pace_so_far():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with TrainingProgress("trial 8 KD", 100, 938, console) as progress:
        progress.resumed(40, "resumed after epoch 40 from x.epoch.pt")
        progress.epoch(41, 100.0)
        progress.epoch(42, 140.0)
        progress.epoch(100, 120.0)
    assert out.getvalue().splitlines() == [
        "trial 8 KD: resumed after epoch 40 from x.epoch.pt",
        "trial 8 KD: epoch 41/100 · 100 s · ~1.6 h left",  # 59 epochs at 100 s
        "trial 8 KD: epoch 42/100 · 140 s · ~1.9 h left",  # 58 at 120 s
        "trial 8 KD: epoch 100/100 · 120 s",
    ]


def test_short_remainders_read_in_minutes_and_seconds():
    out = io.StringIO()
    with TrainingProgress("r", 3, 10, Console(file=out, force_terminal=False)) as progress:
        progress.epoch(1, 30.0)
        progress.epoch(2, 1200.0)
    assert out.getvalue().splitlines() == [
        "r: epoch 1/3 · 30 s · ~60 s left",
        "r: epoch 2/3 · 1200 s · ~10 min left",
    ]
