"""``bench scaling``: the same small study run with 1 and with 2 workers, side by side, fairly.

Every run trains exactly the same candidates (a seeded random sampler, no early stopping) in one
Ray instance with one teacher-output cache. A warm-up run (2 workers, half the trials, discarded)
pays the one-off costs (imports, the cache, the OS's file cache), then the runs alternate
(1, 2, 2, 1 by default) so that neither side always runs first or last on a machine whose load
drifts. ``one_worker_s`` and ``two_workers_s`` are the medians of each side's study clock (first
trial started → last trial finished: proposals, training, database writes); ``speedup`` is their
ratio (trials per hour). ``runs`` keeps every run's raw numbers, the warm-up's too.
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

from autostudent.config import StudyConfig, load_config

DEFAULT_CONFIG = "smoke"  # the built-in study
ORDER = (1, 2, 2, 1)


def _variant(config: StudyConfig, workers: int, n_trials: int, tmp: Path, run: int) -> StudyConfig:
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
            "study": f"scaling-{run}-{workers}w",
            "storage": f"sqlite:///{tmp / f'scaling-{run}.db'}",
        }
    )


def bench_scaling(
    config_path: str | Path = DEFAULT_CONFIG, n_trials: int = 12, order: tuple[int, ...] = ORDER
) -> dict:
    from autostudent.executor import Resources, init_ray

    config = load_config(config_path)
    init_ray(None, Resources(workers=max(order), cpus_per_trial=config.resources.cpus_per_trial))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        warm_up = _variant(config, max(order), max(2, n_trials // 2), Path(tmp), 0)
        runs.append(_run(warm_up, warm_up=True))
        for run, workers in enumerate(order, start=1):
            runs.append(_run(_variant(config, workers, n_trials, Path(tmp), run), warm_up=False))
    timed = [r for r in runs if not r["warm_up"]]
    one = statistics.median(r["window_s"] for r in timed if r["workers"] == 1)
    two = statistics.median(r["window_s"] for r in timed if r["workers"] == 2)
    wall_one = statistics.median(r["wall_s"] for r in timed if r["workers"] == 1)
    wall_two = statistics.median(r["wall_s"] for r in timed if r["workers"] == 2)
    return {
        "trials": n_trials,
        "one_worker_s": one,
        "two_workers_s": two,
        "speedup": one / two,
        # the whole command, with its start-up (study, Tune) that a long study amortises
        "one_worker_wall_s": wall_one,
        "two_workers_wall_s": wall_two,
        "wall_speedup": wall_one / wall_two,
        "load_avg_1min": os.getloadavg()[0],
        "runs": runs,
        "config": str(config_path),
    }


def _run(config: StudyConfig, warm_up: bool) -> dict:
    from autostudent.search import run_search

    load = os.getloadavg()[0]
    started = time.perf_counter()
    study = run_search(config, show_progress=False)
    wall = time.perf_counter() - started
    trials = [t for t in study.trials if t.datetime_start and t.datetime_complete]
    return {
        "workers": config.search.workers,
        "warm_up": warm_up,
        "window_s": _trial_window(trials),
        "wall_s": wall,
        "load_avg_1min": load,
        "per_trial_s": breakdown(trials),
    }


def breakdown(trials) -> dict:
    """Where a trial's time went, mean seconds per trial: in the worker (set-up: build, size
    and latency; training; validation) and outside it (``orchestration``: the proposal, the
    database writes, Ray Tune's bookkeeping and the actor's start, from the trial's creation in
    the study to its end), and ``gap``: one trial's end to the next trial's start on the same
    Ray worker (the driver between two trials)."""
    n = len(trials)
    span = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials) / n
    parts = {
        key: sum(t.user_attrs.get(attr, 0.0) for t in trials) / n
        for key, attr in (
            ("setup", "setup_seconds"),
            ("train", "train_seconds"),
            ("eval", "eval_seconds"),
        )
    }
    lanes: dict[str, list] = {}
    for t in sorted(trials, key=lambda t: t.datetime_start):
        lanes.setdefault(t.user_attrs.get("worker", ""), []).append(t)
    gaps = [
        (b.datetime_start - a.datetime_complete).total_seconds()
        for lane in lanes.values()
        for a, b in itertools.pairwise(lane)
    ]
    return {
        "span": span,
        **parts,
        "orchestration": span - sum(parts.values()),
        "gap": sum(gaps) / len(gaps) if gaps else 0.0,
    }


def _trial_window(trials) -> float:
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds()
