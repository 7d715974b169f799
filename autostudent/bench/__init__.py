"""Benchmarks that measure the performance targets side by side in one run.

- ``autostudent.bench.throughput.bench_throughput``: KD-trial vs student-only vs naive-KD
  training throughput on the same student, data and batch size.
- ``autostudent.bench.sampler.bench_sampler``: seconds per proposal of ``BoTorchSampler`` and
  Optuna's ``GPSampler`` on the same synthetic history.
- ``autostudent.bench.scaling.bench_scaling``: the same small study with 1 and with 2 workers.
"""

from __future__ import annotations
