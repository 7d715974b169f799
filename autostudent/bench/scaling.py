"""``bench scaling``: the same small study run with 1 and with 2 workers, side by side, fairly.

Every run trains exactly the same candidates (a seeded random sampler, no early stopping) in one
Ray instance with one teacher-output cache. A warm-up run (2 workers, half the trials, discarded)
pays the one-off costs (imports, the cache, the OS's file cache), then the runs alternate
(1, 2, 2, 1 by default) so that neither side always runs first or last on a machine whose load
drifts. ``one_worker_s`` and ``two_workers_s`` are the medians of each side's study clock (first
trial started → last trial finished: proposals, training, database writes); ``speedup`` is their
ratio (trials per hour). ``runs`` keeps every run's raw numbers, the warm-up's too.

What two workers can give on this machine at all is measured beside them: before every timed
run, two Ray actors (of no Ray CPUs, idle in between) train one of the bench's students for the
same number of steps, one alone and both side by side (in alternating order). ``ceiling`` is the
median ratio of the pair's training throughput to the lone worker's: 2.0 on two free cores, less
where the two cores share caches, memory bandwidth or a physical core with other tenants.
``of_ceiling`` (``speedup / ceiling``) is the part of that the search reaches: what is lost to
autostudent and Ray Tune rather than to the hardware. ``trial_work_ratio`` says the same from the
runs themselves: the seconds the same trials spent inside the workers (set-up, training,
validation) with two workers over those with one.

Where the rest goes: each run's ``busy_share`` is the share of its workers' study clock spent
inside trials, and ``speedup = 2 / trial_work_ratio * busy_share_ratio`` (2-worker busy share over
1-worker's; exact per pair of runs, near it for the medians): the first factor is the machine's
(the same trials slowed by running side by side), the second ours and Ray Tune's. A run's
``worker_start_s`` (each worker's start-up before its first trial) and ``tail_s`` (seconds a
worker waited idle for the last trial) are the one-off costs a short study weights most.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from autostudent.config import StudyConfig, load_config

if TYPE_CHECKING:
    import optuna

DEFAULT_CONFIG = "smoke"  # the built-in study
ORDER = (1, 2, 2, 1)
# a trial's seconds inside its worker, by part: the trial's user attribute that holds each
IN_WORKER = {"setup": "setup_seconds", "train": "train_seconds", "eval": "eval_seconds"}


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
    runs, probes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        warm_up = _variant(config, max(order), max(2, n_trials // 2), Path(tmp), 0)
        result, study = _run(warm_up, warm_up=True)
        runs.append(result)
        probe = CeilingProbe(_median_student(study), config.budget.batch_size)
        try:
            for run, workers in enumerate(order, start=1):
                probes.append({"before_run": run, **probe.measure(pair_first=run % 2 == 0)})
                runs.append(_run(_variant(config, workers, n_trials, Path(tmp), run), False)[0])
        finally:
            probe.close()
    return {
        "trials": n_trials,
        **summarise(runs, probes),
        "load_avg_1min": os.getloadavg()[0],
        "runs": runs,
        "probes": probes,
        "config": str(config_path),
    }


def summarise(runs: list[dict], probes: list[dict]) -> dict:
    """Each side's median over the timed runs (the warm-up left out), their ratios, and the
    machine's ceiling from the probes."""
    timed = [r for r in runs if not r["warm_up"]]

    def median(workers: int, value) -> float:
        return statistics.median(value(r) for r in timed if r["workers"] == workers)

    one, two = (median(w, lambda r: r["window_s"]) for w in (1, 2))
    wall_one, wall_two = (median(w, lambda r: r["wall_s"]) for w in (1, 2))
    work_one, work_two = (median(w, _in_worker_s) for w in (1, 2))
    busy_one, busy_two = (median(w, lambda r: r["occupancy"]["busy_share"]) for w in (1, 2))
    ceiling = statistics.median(p["ratio"] for p in probes)
    return {
        "one_worker_s": one,
        "two_workers_s": two,
        "speedup": one / two,
        "ceiling": ceiling,
        "of_ceiling": one / two / ceiling,
        # the same trials' seconds inside the workers (set-up, training, validation), two side by
        # side over one alone: how much the two runs slowed each other on the cores
        "trial_work_ratio": work_two / work_one,
        # the share of the workers' study clock inside trials, two workers over one: what the
        # worker start-up, the last trial alone and the driver between trials cost the pair
        "busy_share_ratio": busy_two / busy_one,
        # the whole command, with its start-up (study, Tune) that a long study amortises
        "one_worker_wall_s": wall_one,
        "two_workers_wall_s": wall_two,
        "wall_speedup": wall_one / wall_two,
    }


def _run(config: StudyConfig, warm_up: bool) -> tuple[dict, optuna.Study]:
    """One search: its raw numbers, and the study (the warm-up's names the probe's student)."""
    from autostudent.driver import run_search

    load = os.getloadavg()[0]
    started = time.perf_counter()
    study = run_search(config, show_progress=False)
    wall = time.perf_counter() - started
    trials = [t for t in study.trials if t.datetime_start and t.datetime_complete]
    result = {
        "workers": config.search.workers,
        "warm_up": warm_up,
        "window_s": _trial_window(trials),
        "wall_s": wall,
        "load_avg_1min": load,
        "per_trial_s": breakdown(trials),
        "occupancy": occupancy(trials),
    }
    return result, study


def _in_worker_s(run: dict) -> float:
    return sum(run["per_trial_s"][key] for key in IN_WORKER)


def _median_student(study) -> dict:
    """The spec of the study's median-sized trained student: what the probe trains."""
    trained = sorted(
        (t for t in study.trials if "params" in t.user_attrs), key=lambda t: t.user_attrs["params"]
    )
    return trained[len(trained) // 2].user_attrs["spec"]


class CeilingProbe:
    """Two idle Ray actors that, on ``measure()``, train a student for the same number of steps,
    one alone and then both at once (or the other way round): the machine's two-worker ceiling.
    They ask Ray for no CPUs, so that the runs' trials are scheduled as if they were not there
    (between probes they wait, using none)."""

    seconds = 3.0  # per measurement of one side

    def __init__(self, spec: dict, batch_size: int) -> None:
        import ray

        trainer = ray.remote(num_cpus=0)(_StepTrainer)
        self.actors = [trainer.remote(spec, batch_size) for _ in range(2)]
        per_step = min(ray.get([a.time_steps.remote(5) for a in self.actors])) / 5
        self.steps = max(10, math.ceil(self.seconds / per_step))

    def measure(self, pair_first: bool) -> dict:
        """Alone, pair, alone (or pair, alone, pair): the machine's speed drifts within
        seconds here, so each side is measured on both sides of the other."""
        import ray

        alone: list[float] = []
        pair: list[list[float]] = []
        for side in ("pair", "alone", "pair") if pair_first else ("alone", "pair", "alone"):
            if side == "alone":
                alone.append(ray.get(self.actors[0].time_steps.remote(self.steps)))
            else:
                pair.append(ray.get([a.time_steps.remote(self.steps) for a in self.actors]))
        alone_s = statistics.mean(alone)
        pair_s = [statistics.mean(each) for each in zip(*pair, strict=True)]
        # throughput (steps per second) of the two side by side over that of one alone
        ratio = sum(alone_s / s for s in pair_s)
        return {"steps": self.steps, "alone_s": alone, "pair_s": pair, "ratio": ratio}

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)


class _StepTrainer:
    """A Ray worker's training step, without data or teacher: a student, one random batch."""

    def __init__(self, spec: dict, batch_size: int) -> None:
        import torch
        from torch.nn import functional

        from autostudent.student import build_student
        from autostudent.training import sgd

        torch.set_num_threads(1)
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        self.model = build_student(spec)
        size = spec["input_size"]
        x = torch.randn(batch_size, spec["in_channels"], size, size, generator=gen)
        y = torch.randint(0, spec["num_classes"], (batch_size,), generator=gen)
        opt = sgd(self.model, 0.0, 5e-4, 1)  # a learning rate of 0: every step the same work

        def step() -> None:
            loss = functional.cross_entropy(self.model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        self.step = step
        for _ in range(3):  # allocators, kernels
            step()

    def time_steps(self, steps: int) -> float:
        """Seconds for ``steps`` training steps."""
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - started


def breakdown(trials) -> dict:
    """Where a trial's time went, mean seconds per trial: in the worker (set-up: build, size
    and latency; training; validation) and outside it (``orchestration``: the proposal, the
    database writes, Ray Tune's bookkeeping and the actor's start, from the trial's creation in
    the study to its end), and ``gap``: one trial's end to the next trial's start on the same
    Ray worker (the driver between two trials)."""
    n = len(trials)
    span = sum(_span(t) for t in trials) / n
    parts = {
        key: sum(t.user_attrs.get(attr, 0.0) for t in trials) / n for key, attr in IN_WORKER.items()
    }
    gaps = [
        (b.datetime_start - a.datetime_complete).total_seconds()
        for lane in _lanes(trials)
        for a, b in itertools.pairwise(lane)
    ]
    return {
        "span": span,
        **parts,
        "orchestration": span - sum(parts.values()),
        "gap": sum(gaps) / len(gaps) if gaps else 0.0,
    }


def occupancy(trials) -> dict:
    """How a run's workers spent its study clock: ``busy_share``, the share of worker-seconds
    inside trials (set-up, training, validation); ``worker_start_s``, each worker's start-up
    (its first trial's time outside the worker over the median of the other trials', mean over
    workers); ``tail_s``, the seconds between the first worker's last trial ending and the run's
    end (the last trial running while a worker waits)."""
    lanes = _lanes(trials)
    outside = {t.number: _span(t) - _in_worker(t) for t in trials}
    firsts = {lane[0].number for lane in lanes}
    typical = statistics.median([v for k, v in outside.items() if k not in firsts] or [0.0])
    end = max(t.datetime_complete for t in trials)
    return {
        "busy_share": sum(_in_worker(t) for t in trials) / (len(lanes) * _trial_window(trials)),
        "worker_start_s": statistics.mean(outside[n] - typical for n in firsts),
        "tail_s": (end - min(lane[-1].datetime_complete for lane in lanes)).total_seconds(),
    }


def _lanes(trials) -> list[list]:
    """The trials of each Ray worker, in the order they ran."""
    lanes: dict[str, list] = {}
    for t in sorted(trials, key=lambda t: t.datetime_start):
        lanes.setdefault(t.user_attrs.get("worker", ""), []).append(t)
    return list(lanes.values())


def _span(trial) -> float:
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def _in_worker(trial) -> float:
    return sum(trial.user_attrs.get(attr, 0.0) for attr in IN_WORKER.values())


def _trial_window(trials) -> float:
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds()
