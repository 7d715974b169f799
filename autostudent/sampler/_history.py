"""The study's trials as what the GPs learn from: points of the cube, larger-is-better values.

- Every objective is learnt from the COMPLETE trials. ``TrialRecords`` says what else a trial
  tells: an objective that is exact whatever happened to training (a parameter count) is also
  read from PRUNED and FAILed trials that stored it, and the objective with a learning curve is
  observed at every epoch of every finished trial, PRUNED ones included, as (point, fidelity
  ``epoch / max_epochs``) -> value: the model predicts it at full fidelity.
- Epochs below ``min_fidelity`` are not observations: under the one-cycle warm-up the first
  epoch's accuracy is noise (37.8 % at epoch 1 for a student that reached 86.0 % at epoch 3).
  Measured leave-one-out on the demo study (10 COMPLETE trials cut as if pruned, 23 pruned
  curves), MAE of the predicted final accuracy: GP on COMPLETE trials only 0.026; fidelity GP
  on every epoch 0.050 when the held-out trial stopped at epoch 1 of 3, 0.023 at epoch 2.
  A PRUNED trial with no epoch at ``min_fidelity`` still teaches: it is a believer point, as
  a RUNNING trial is (the GPs are conditioned on their own mean there), so the acquisition
  expects no improvement from proposing it again.
- Every finished trial that carries a constraint value (``FrozenTrial.constraints``, set with
  ``Trial.set_constraint``, feasible when <= 0, as Optuna's GPSampler reads them) trains that
  constraint's GP, infeasible, pruned and failed ones included; constraints the sampler knows
  exactly (``KnownConstraints``) are not learnt.
- RUNNING trials other than the one being proposed for are pending points.
- A minimised objective is modelled in log scale when ``log_objectives`` says so, or, when it is
  ``None``, when all its values are positive and span at least two orders of magnitude.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from optuna.study import Study

    from autostudent.sampler._encoding import CubeEncoding

# A minimised positive objective spanning this ratio is modelled in log scale (log_objectives=None).
_AUTO_LOG_SPAN = 100.0
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class TrialRecords:
    """Where a study's trials keep what PRUNED and FAILed ones still tell (user attributes)."""

    exact: Sequence[str | None] = ()  # per objective: attribute with a state-independent value
    curve: str | None = None  # attribute: per-epoch values of objective ``curve_objective``
    curve_objective: int = 0
    max_epochs: str = "max_epochs"  # attribute: the epochs of a full-fidelity trial
    min_fidelity: float = 0.5  # earlier epochs are not observations (see the module doc)


@dataclass(frozen=True)
class KnownConstraints:
    """Constraints that are an exact, cheap function of the point (a student's size against
    its cap): ``evaluate(params)`` gives ``{key: value - cap}``, feasible when all <= 0."""

    keys: tuple[str, ...]
    evaluate: Callable[[Mapping[str, Any]], Mapping[str, float]]


@dataclass(frozen=True)
class Output:
    """One modelled quantity: rows of the cube (a last column in (0, 1] is the fidelity when
    ``fidelity``) and the values seen there."""

    X: np.ndarray
    y: np.ndarray
    fidelity: bool = False


@dataclass(frozen=True)
class History:
    """What the GPs learn from, already in the cube and in "larger is better" form."""

    X: np.ndarray  # (n, d) COMPLETE trials: the incumbents
    Y: np.ndarray  # (n, m) their objectives, maximised, log scale where asked
    feasible: np.ndarray  # (n,) every constraint <= 0 (all True without constraints)
    objectives: list[Output]  # m: what each objective's GP learns from
    constraints: list[Output] = field(default_factory=list)  # learnt constraints
    X_pending: np.ndarray | None = None  # (p, d) RUNNING trials and believed PRUNED ones
    reference: np.ndarray | None = None  # (m,) hypervolume reference, in the GP's form


def read_history(
    study: Study,
    trial: FrozenTrial,
    cube: CubeEncoding,
    *,
    log_objectives: Sequence[bool] | None = None,
    records: TrialRecords | None = None,
    known: KnownConstraints | None = None,
    reference: Sequence[float] | None = None,
) -> History:
    records = records or TrialRecords()
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
        if cube.covers(t.params)
    ]
    finished = [t for t in trials if t.state in FINISHED]
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    X = _encode(cube, complete)
    values = np.array([t.values for t in complete], float).reshape(len(complete), -1)
    logs = [_log_scale(i, d, values[:, i], log_objectives) for i, d in enumerate(study.directions)]
    Y = np.stack(
        [_transform(values[:, i], d, logs[i]) for i, d in enumerate(study.directions)], axis=1
    )
    outputs, believed = [], []
    for i, direction in enumerate(study.directions):
        if records.curve is not None and i == records.curve_objective:
            Xi, yi, believed = _curves(cube, finished, records, i)
            outputs.append(Output(Xi, _transform(yi, direction, logs[i]), fidelity=True))
            continue
        attr = records.exact[i] if i < len(records.exact) else None
        rows = [t for t in finished if t.state != TrialState.COMPLETE and attr in t.user_attrs]
        raw = np.concatenate([values[:, i], [float(t.user_attrs[attr]) for t in rows]])
        column = _transform(raw, direction, logs[i])
        outputs.append(Output(np.concatenate([X, _encode(cube, rows)]), column))
    outputs = _share_identical(outputs)

    skip = set(known.keys) if known else set()
    keys = sorted({k for t in finished for k in t.constraints} - skip)
    constraints = []
    for key in keys:
        rows = [t for t in finished if key in t.constraints]
        c = np.array([t.constraints[key] for t in rows], float)
        constraints.append(Output(_encode(cube, rows), _warp(c)))
    feasible = np.array([all(v <= 0.0 for v in t.constraints.values()) for t in complete], bool)

    running = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number]
    running += believed
    ref = None
    if reference is not None:
        ref = np.array(
            [
                _transform(np.array([float(r)]), d, logs[i])[0]
                for i, (r, d) in enumerate(zip(reference, study.directions, strict=True))
            ]
        )
    return History(
        X, Y, feasible, outputs, constraints, _encode(cube, running) if running else None, ref
    )


def _encode(cube: CubeEncoding, trials: Sequence[FrozenTrial]) -> np.ndarray:
    return np.array([cube.encode(t.params) for t in trials]).reshape(len(trials), cube.dim)


def _curves(
    cube: CubeEncoding, trials: Sequence[FrozenTrial], records: TrialRecords, objective: int
) -> tuple[np.ndarray, np.ndarray, list[FrozenTrial]]:
    """(point, epoch / max_epochs) -> value at that epoch, for every epoch at or above
    ``min_fidelity`` of every trial with a curve (a COMPLETE trial without one: at full
    fidelity), and the PRUNED trials left without an observation (believer points)."""
    rows, values, believed = [], [], []
    for t in trials:
        curve = t.user_attrs.get(records.curve) if records.curve else None
        full = t.user_attrs.get(records.max_epochs)
        x = cube.encode(t.params)
        if curve and full:
            kept = [
                (epoch / full, value)
                for epoch, value in enumerate(curve[: int(full)], start=1)
                if epoch / full >= records.min_fidelity or epoch == full
            ]
            rows += [np.append(x, fidelity) for fidelity, _ in kept]
            values += [value for _, value in kept]
            if not kept and t.state == TrialState.PRUNED:
                believed.append(t)
        elif t.state == TrialState.COMPLETE:
            rows.append(np.append(x, 1.0))
            values.append(t.values[objective])
        elif t.state == TrialState.PRUNED:
            believed.append(t)
    X = np.array(rows).reshape(len(rows), cube.dim + 1)
    return X, np.array(values, float), believed


def _share_identical(outputs: list[Output]) -> list[Output]:
    """Outputs learnt on the same rows share one array, so their GPs are fitted as a batch."""
    shared: list[Output] = []
    for o in outputs:
        twin = next(
            (s for s in shared if s.fidelity == o.fidelity and np.array_equal(s.X, o.X)), None
        )
        shared.append(Output(twin.X, o.y, o.fidelity) if twin is not None else o)
    return shared


def _warp(c: np.ndarray) -> np.ndarray:
    """asinh(c / s): odd and monotone, so feasibility (c <= 0) is unchanged, while caps whose
    violations span orders of magnitude become GP-friendly."""
    finite = c[np.isfinite(c)]
    scale = float(np.median(np.abs(finite))) if len(finite) else 1.0
    c = np.nan_to_num(c, nan=0.0, posinf=finite.max(initial=1.0) * 10, neginf=0.0)
    return np.arcsinh(c / (scale if scale > 0 else 1.0))


def objectives(
    directions: Sequence[StudyDirection],
    values: np.ndarray,
    log_objectives: Sequence[bool] | None = None,
) -> np.ndarray:
    """Objective values as the GP sees them: finite, log where due, larger is better."""
    return np.stack(
        [
            _transform(values[:, i], d, _log_scale(i, d, values[:, i], log_objectives))
            for i, d in enumerate(directions)
        ],
        axis=1,
    )


def _transform(column: np.ndarray, direction: StudyDirection, log: bool) -> np.ndarray:
    finite = column[np.isfinite(column)]
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    column = np.clip(np.nan_to_num(column, nan=low, posinf=high, neginf=low), low, high)
    if log:
        column = np.log(column)
    return -column if direction == StudyDirection.MINIMIZE else column


def _log_scale(
    i: int, direction: StudyDirection, column: np.ndarray, log_objectives: Sequence[bool] | None
) -> bool:
    finite = column[np.isfinite(column)]
    positive = bool(np.all(finite > 0))
    if log_objectives is not None:
        if log_objectives[i] and not positive:
            warnings.warn(
                f"BoTorchSampler: objective {i} has values <= 0, modelled without log",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        return log_objectives[i]
    return (
        direction == StudyDirection.MINIMIZE
        and positive
        and len(finite) > 0
        and math.log(finite.max() / finite.min()) >= math.log(_AUTO_LOG_SPAN)
    )
