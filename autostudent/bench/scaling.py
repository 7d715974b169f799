"""``bench scaling``: the same small study run with 1 and with 2 workers, side by side.

Both runs train exactly the same candidates (a seeded random sampler, no early stopping), share
one Ray instance and one teacher-output cache, and are timed end to end (proposals, worker
start-up, training, database writes), so the ratio is trials per hour, 2 workers vs 1.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from autostudent.config import StudyConfig, load_config

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "studies" / "smoke.yaml"


def _variant(config: StudyConfig, workers: int, n_trials: int, tmp: Path) -> StudyConfig:
    search = config.search.model_copy(
        update={
            "workers": workers,
            "n_trials": n_trials,
            "sampler": "random",
            "early_stopping": "none",
        }
    )
    return config.model_copy(
        update={
            "search": search,
            "study": f"scaling-{workers}",
            "storage": f"sqlite:///{tmp / f'scaling-{workers}.db'}",
        }
    )


def bench_scaling(config_path: Path = DEFAULT_CONFIG, n_trials: int = 8) -> dict:
    from autostudent.executor import Resources, init_ray
    from autostudent.search import run_search

    config = load_config(config_path)
    init_ray(None, Resources(workers=2, cpus_per_trial=config.resources.cpus_per_trial))
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            variant = _variant(config, workers, n_trials, Path(tmp))
            started = time.perf_counter()
            run_search(variant, show_progress=False)
            timings[workers] = time.perf_counter() - started
    return {
        "trials": n_trials,
        "one_worker_s": timings[1],
        "two_workers_s": timings[2],
        "speedup": timings[1] / timings[2],
        "config": str(config_path),
    }
