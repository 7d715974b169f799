"""The samplers a study can use, by name: ours (BoTorch) and Optuna's, for comparison."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna

from autostudent.objectives import OBJECTIVES
from autostudent.registry import Registry

SamplerFactory = Callable[..., optuna.samplers.BaseSampler]
SAMPLERS: Registry[SamplerFactory] = Registry("sampler")


def make_sampler(
    name: str, *, seed: int, n_startup_trials: int, objectives: Sequence[str]
) -> optuna.samplers.BaseSampler:
    return SAMPLERS.get(name)(
        seed=seed, n_startup_trials=n_startup_trials, objectives=list(objectives)
    )


@SAMPLERS.register("botorch")
def _botorch(
    seed: int, n_startup_trials: int, objectives: list[str]
) -> optuna.samplers.BaseSampler:
    from autostudent.sampler._sampler import BoTorchSampler

    return BoTorchSampler(
        seed=seed,
        n_startup_trials=n_startup_trials,
        log_objectives=[OBJECTIVES[o].log_scale for o in objectives],
    )


@SAMPLERS.register("gp")
def _gp(seed: int, n_startup_trials: int, objectives: list[str]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)


@SAMPLERS.register("tpe")
def _tpe(seed: int, n_startup_trials: int, objectives: list[str]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=n_startup_trials, multivariate=True
    )


@SAMPLERS.register("nsga2")
def _nsga2(seed: int, n_startup_trials: int, objectives: list[str]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed)


@SAMPLERS.register("random")
def _random(seed: int, n_startup_trials: int, objectives: list[str]) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)
