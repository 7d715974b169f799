"""Ablation: ours on the FLOPs task without the gap rule (README.md holds the design).

Runs `bench hypervolume --task fashion-mnist-2k-flops --samplers botorch` with the sampler's
coverage built with ``gap_share=0`` (no proposal is sent to the front's largest size gap; the
repeat rule stays). Everything else is the product's code at the commit that ran it.

    .venv/bin/python studies/results/bench_hypervolume/fashion-mnist-2k-flops-nogap/nogap.py
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from autostudent.bench.hypervolume import bench_hypervolume
from autostudent.sampler import _catalogue
from autostudent.sampler._coverage import Coverage

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    _catalogue.Coverage = functools.partial(Coverage, gap_share=0.0)  # type: ignore[misc]
    summary = bench_hypervolume(
        HERE, samplers=["botorch"], task="fashion-mnist-2k-flops", log=print
    )
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary["samplers"], indent=1))
