"""The samplers a study can use, by name: ours (BoTorch) and Optuna's, for comparison.

``make_sampler`` gets what the study knows beside the names of its objectives: its declared
search space, the size caps as known constraints, the hypervolume reference per objective, and
``measure`` (a point's student's exact sizes by name, for the repeat and gap rules of
``_coverage``) with ``coverage``, the study's settings of those rules (``Coverage``'s
keywords). Ours uses all of it; Optuna's samplers take what they can (seed, startup).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from autostudent.objectives import OBJECTIVES
from autostudent.registry import Registry
from autostudent.sampler._coverage import Coverage, Measure
from autostudent.sampler._history import KnownConstraints, TrialRecords

SamplerFactory = Callable[..., optuna.samplers.BaseSampler]
SAMPLERS: Registry[SamplerFactory] = Registry("sampler")
# the samplers that use ``known_constraints``: they never propose an over-cap student. Optuna's
# learn nothing from one (it is a FAIL, which they ignore) and may propose it again.
CAP_AWARE = frozenset({"botorch"})


def make_sampler(
    name: str,
    *,
    seed: int,
    n_startup_trials: int,
    objectives: Sequence[str],
    search_space: Mapping[str, BaseDistribution] | None = None,
    known_constraints: KnownConstraints | None = None,
    hv_reference: Mapping[str, float] | None = None,
    measure: Measure | None = None,
    coverage: Mapping[str, Any] | None = None,
) -> optuna.samplers.BaseSampler:
    return SAMPLERS.get(name)(
        seed=seed,
        n_startup_trials=n_startup_trials,
        objectives=list(objectives),
        coverage=coverage,
        search_space=search_space,
        known_constraints=known_constraints,
        hv_reference=hv_reference,
        measure=measure,
    )


@SAMPLERS.register("botorch")
def _botorch(
    seed: int,
    n_startup_trials: int,
    objectives: list[str],
    search_space: Mapping[str, BaseDistribution] | None = None,
    known_constraints: KnownConstraints | None = None,
    hv_reference: Mapping[str, float] | None = None,
    measure: Measure | None = None,
    coverage: Mapping[str, Any] | None = None,
) -> optuna.samplers.BaseSampler:
    from autostudent.sampler._sampler import BoTorchSampler

    table = [OBJECTIVES[o] for o in objectives]
    # Accuracy is scored from 0 (pareto.hypervolume); a size from the study's reference.
    reference = None
    if hv_reference is not None and all(o.maximize or o.name in hv_reference for o in table):
        reference = [0.0 if o.maximize else float(hv_reference[o.name]) for o in table]
    accuracy = [i for i, o in enumerate(table) if o.name == "accuracy"]
    records = TrialRecords(
        # sizes are exact whatever happened to training; accuracy is not (low fidelity)
        exact=[None if o.maximize else o.result_key for o in table],
        curve="curve" if accuracy else None,
        curve_objective=accuracy[0] if accuracy else 0,
    )
    # gaps are measured on the study's first size objective (params or FLOPs)
    sizes = [(i, o.result_key) for i, o in enumerate(table) if not o.maximize]
    rules = None
    if measure is not None and sizes:
        rules = Coverage(measure, size=sizes[0][1], objective=sizes[0][0], **(coverage or {}))
    return BoTorchSampler(
        seed=seed,
        n_startup_trials=n_startup_trials,
        log_objectives=[o.log_scale for o in table],
        records=records,
        known_constraints=known_constraints,
        reference_point=reference,
        search_space=search_space,
        coverage=rules,
    )


@SAMPLERS.register("gp")
def _gp(seed: int, n_startup_trials: int, **_: Any) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)


@SAMPLERS.register("tpe")
def _tpe(seed: int, n_startup_trials: int, **_: Any) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=n_startup_trials, multivariate=True
    )


@SAMPLERS.register("nsga2")
def _nsga2(seed: int, n_startup_trials: int, **_: Any) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed)


@SAMPLERS.register("random")
def _random(seed: int, n_startup_trials: int, **_: Any) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)
