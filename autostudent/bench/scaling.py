"""``bench scaling``: the same small study run with 1 and with 2 workers, side by side.

Both runs train exactly the same candidates (a seeded random sampler, no early stopping) and share
one Ray instance and one teacher-output cache. ``speedup`` is trials per hour on the study's own
clock (first trial started → last trial finished: proposals, worker start-up, training, database
writes); ``wall_speedup`` adds the command's one-off start-up (data, teacher, study).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from autostudent.config import StudyConfig, load_config

DEFAULT_CONFIG = "smoke"  # the built-in study


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


def bench_scaling(config_path: str | Path = DEFAULT_CONFIG, n_trials: int = 12) -> dict:
    from autostudent.executor import Resources, init_ray
    from autostudent.search import run_search

    config = load_config(config_path)
    init_ray(None, Resources(workers=2, cpus_per_trial=config.resources.cpus_per_trial))
    wall, window = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            variant = _variant(config, workers, n_trials, Path(tmp))
            started = time.perf_counter()
            study = run_search(variant, show_progress=False)
            wall[workers] = time.perf_counter() - started
            window[workers] = _trial_window(study)
    return {
        "trials": n_trials,
        # the study's own clock: first trial started → last trial finished (trials per hour)
        "one_worker_s": window[1],
        "two_workers_s": window[2],
        "speedup": window[1] / window[2],
        # the whole command, with start-up (data, teacher, Ray workers) that a long study amortises
        "one_worker_wall_s": wall[1],
        "two_workers_wall_s": wall[2],
        "wall_speedup": wall[1] / wall[2],
        "config": str(config_path),
    }


def _trial_window(study) -> float:
    trials = [t for t in study.trials if t.datetime_start and t.datetime_complete]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds()
