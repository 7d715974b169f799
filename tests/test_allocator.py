"""The allocator settings of training processes: freed activations are reused, not page-faulted
in again on every step, both where they are applied to a running process (the CLI) and where
a Ray worker starts with them (its trainable runs in a thread, as Ray Tune's does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autostudent.allocator import SETTINGS, glibc_mallopt, worker_env

# Trains a small channels-last student for a few steps, in the main thread or in another one,
# and prints the minor page faults of those steps (after two warm-up steps).
TRAIN = """
import json, resource, sys, threading
import torch
from autostudent.allocator import keep_freed_memory
from autostudent.student import build_student
from autostudent.training import sgd
torch.set_num_threads(1)
if sys.argv[1] == "mallopt":
    keep_freed_memory()
spec = {"kind": "chain", "op": "sepconv3x3", "in_channels": 1, "input_size": 28,
        "num_classes": 10, "stem_stride": 1,
        "stages": [{"channels": 16, "depth": 2}, {"channels": 32, "depth": 1}]}
model = build_student(spec)
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
opt = sgd(model, 0.01, 5e-4, 100)
faults = []
def steps():
    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
    step(); step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
if sys.argv[2] == "thread":
    t = threading.Thread(target=steps); t.start(); t.join()
else:
    steps()
print(json.dumps(faults[0]))
"""

glibc_only = pytest.mark.skipif(
    glibc_mallopt() is None, reason="the allocator settings are glibc's (Linux)"
)


def _faults(mode: str, where: str, env: dict[str, str]) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in worker_env()}
    done = subprocess.run(
        [sys.executable, "-c", TRAIN, mode, where],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@glibc_only
@pytest.mark.slow
def test_a_worker_started_with_the_settings_reuses_memory_in_its_training_thread():
    default = _faults("none", "thread", {})
    settled = _faults("none", "thread", worker_env())
    assert default > 1000  # glibc's defaults: the activations are faulted in step after step
    assert settled < default / 4


@glibc_only
@pytest.mark.slow
def test_the_settings_applied_to_a_running_process_keep_its_main_thread_from_faulting():
    default = _faults("none", "main", {})
    settled = _faults("mallopt", "main", {})
    assert default > 1000
    assert settled < default / 4


def test_the_environment_and_mallopt_carry_the_same_settings():
    env = worker_env()
    assert [name for _, name, _ in SETTINGS] == list(env)
    assert env["MALLOC_ARENA_MAX"] == "1"
    assert int(env["MALLOC_MMAP_THRESHOLD_"]) == 32 << 20  # glibc refuses more


@pytest.mark.slow
def test_ray_workers_start_with_the_allocator_settings():
    import ray

    from autostudent.executor import Resources, init_ray

    init_ray(None, Resources(workers=2))
    try:

        @ray.remote(num_cpus=1)
        def environment() -> dict[str, str | None]:
            return {name: os.environ.get(name) for name in worker_env()}

        assert ray.get(environment.remote()) == worker_env()
    finally:
        ray.shutdown()
