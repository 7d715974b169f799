"""Seconds per proposal: ``BoTorchSampler`` beside Optuna's ``GPSampler`` on one history.

The synthetic problem looks like ours: 8 generator parameters (ints, floats, a log-scale width),
the KD temperature (log) and alpha, and a 5-way KD-loss choice; a smooth "accuracy" in [0, 1] to
maximise, a "params" count spread over orders of magnitude to minimise, and a cap on params as an
Optuna constraint. The same finished trials are copied into one in-memory study per sampler; each
timed ``ask`` is told FAIL so that every ask sees the same history.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from autostudent.sampler import FALLBACK_ATTR, BoTorchSampler

LOSSES = ("kd", "mse", "dkd", "rkd", "wsl")
SPACE: dict[str, BaseDistribution] = {
    "top_nodes": IntDistribution(3, 12),
    "mid_nodes": IntDistribution(2, 8),
    "bottom_nodes": IntDistribution(2, 6),
    "top_p": FloatDistribution(0.1, 0.9),
    "mid_p": FloatDistribution(0.1, 0.9),
    "ring_k": IntDistribution(2, 6, step=2),
    "width": IntDistribution(8, 256, log=True),
    "stage_ratio": FloatDistribution(1.0, 3.0),
    "temperature": FloatDistribution(1.0, 20.0, log=True),
    "alpha": FloatDistribution(0.0, 1.0),
    "loss": CategoricalDistribution(LOSSES),
}
PARAMS_CAP = 1e6


def student(params: dict[str, Any], noise: float = 0.0) -> tuple[float, float]:
    """(accuracy, parameter count) of a made-up student: smooth, saturating, log-spread."""
    size = (
        9 * params["width"] ** 2 * params["stage_ratio"] * params["top_nodes"] * params["mid_nodes"]
        + 50 * params["bottom_nodes"] * params["width"]
    )
    capacity = 0.25 * (math.log(size) - math.log(2e5))
    kd = (
        -0.3 * (math.log(params["temperature"]) - math.log(4.0)) ** 2
        - 0.8 * (params["alpha"] - 0.7) ** 2
        + {"kd": 0.0, "mse": -0.15, "dkd": 0.1, "rkd": -0.3, "wsl": 0.05}[params["loss"]]
    )
    wiring = -((params["top_p"] - 0.4) ** 2) - 0.5 * (params["mid_p"] - 0.6) ** 2
    score = capacity + kd + wiring - 0.05 * abs(params["ring_k"] - 4)
    accuracy = 1.0 / (1.0 + math.exp(-(2.0 * score + 1.0))) + noise
    return min(max(accuracy, 0.0), 1.0), size


def history(trials: int, seed: int) -> list[FrozenTrial]:
    """``trials`` finished trials at random points (half of the space is over the cap)."""
    rng = np.random.default_rng(seed)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    out = []
    for _ in range(trials):
        trial = study.ask(SPACE)
        accuracy, size = student(trial.params, noise=float(rng.normal(0.0, 0.005)))
        out.append(
            optuna.trial.create_trial(
                params=trial.params,
                distributions=SPACE,
                values=[accuracy, size],
                constraints={"params": size - PARAMS_CAP},
            )
        )
        study.tell(trial, state=TrialState.FAIL)
    return out


def time_asks(
    sampler: optuna.samplers.BaseSampler, trials: list[FrozenTrial], asks: int
) -> tuple[list[tuple[float, float]], list[str]]:
    """(wall, CPU) seconds of each of ``asks`` proposals on the same history, first included,
    and the fallback reasons of those that were not Bayesian (a fallback is fast and wrong).

    CPU seconds are the process's: on a machine shared with other work they are what the
    proposal would take alone (both samplers compute on one thread)."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for trial in trials:
        study.add_trial(trial)
    seconds = []
    for _ in range(asks):
        wall, cpu = time.perf_counter(), time.process_time()
        trial = study.ask(SPACE)
        seconds.append((time.perf_counter() - wall, time.process_time() - cpu))
        study.tell(trial, state=TrialState.FAIL)
    timed = study.trials[len(trials) :]
    return seconds, [t.user_attrs[FALLBACK_ATTR] for t in timed if FALLBACK_ATTR in t.user_attrs]


def bench_sampler(trials: int = 100, seed: int = 0, asks: int = 5) -> dict:
    """Median seconds per proposal after ``trials`` finished trials, ours and GPSampler's.

    The first ask of each sampler (a cold GP fit) is reported apart; the medians are over the
    following ``asks`` (warm fits), as in a running search. ``fallbacks`` counts timed
    proposals of ours that fell back to Sobol. ``load_1min`` is the machine's load
    average when done: wall seconds on a busy machine are inflated, CPU seconds much less.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    finished = history(trials, seed)
    ours, fallbacks = time_asks(BoTorchSampler(seed=seed), finished, asks + 1)
    theirs, _ = time_asks(optuna.samplers.GPSampler(seed=seed), finished, asks + 1)
    ours_s, ours_cpu_s = (statistics.median(s[k] for s in ours[1:]) for k in (0, 1))
    gp_s, gp_cpu_s = (statistics.median(s[k] for s in theirs[1:]) for k in (0, 1))
    return {
        "trials": trials,
        "ours_s": ours_s,
        "gpsampler_s": gp_s,
        "ratio": ours_s / gp_s,
        "ours_cpu_s": ours_cpu_s,
        "gpsampler_cpu_s": gp_cpu_s,
        "ours_first_s": ours[0][0],
        "gpsampler_first_s": theirs[0][0],
        "load_1min": os.getloadavg()[0],
        "fallbacks": len(fallbacks),  # > 0: the timings are not all BO's (the CLI exits 1)
        "fallback_reasons": fallbacks,
    }
