"""Ablation: ours on the FLOPs task without the gap rule (README.md holds the design).

Runs `bench hypervolume --task fashion-mnist-2k-flops --samplers botorch` with the task's
study setting ``search.coverage.gap_share: 0`` (no proposal is sent to the front's largest size
gap; the repeat rule stays). Everything else is the product's code at the commit that ran it.
The runs were made at 74d99a5, before the study file had ``search.coverage``: this script then
built the sampler's ``Coverage`` with ``gap_share=0`` by patching ``_catalogue.Coverage``, which
is the same sampler.

    .venv/bin/python studies/results/bench_hypervolume/fashion-mnist-2k-flops-nogap/nogap.py
"""

from __future__ import annotations

import json
from pathlib import Path

from autostudent.bench.hypervolume import TASKS, bench_hypervolume

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    TASKS["fashion-mnist-2k-flops"].fields["search"]["coverage"] = {"gap_share": 0.0}
    summary = bench_hypervolume(  # gap proposals pruned: the default when it ran
        HERE, samplers=["botorch"], task="fashion-mnist-2k-flops", prune_gap_proposals=True,
        log=print,
    )  # fmt: skip
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary["samplers"], indent=1))
