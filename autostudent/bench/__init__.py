"""Benchmarks that measure the performance targets side by side in one run.

- ``autostudent.bench.sampler.bench_sampler``: seconds per proposal of ``BoTorchSampler`` and
  Optuna's ``GPSampler`` on the same synthetic history.
"""

from __future__ import annotations
