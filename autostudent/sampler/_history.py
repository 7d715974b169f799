"""The study's trials as what the GPs learn from: points of the cube, larger-is-better values.

- Objectives are learnt from the COMPLETE trials (a PRUNED or FAILed trial's values are
  low-fidelity or missing).
- Every finished trial that carries constraint values (``FrozenTrial.constraints``, set with
  ``Trial.set_constraint``, feasible when every value is <= 0, as Optuna's GPSampler reads them)
  trains the constraint GP, infeasible, pruned and failed ones included.
- RUNNING trials other than the one being proposed for are pending points.
- A minimised objective is modelled in log scale when ``log_objectives`` says so, or, when it is
  ``None``, when all its values are positive and span at least two orders of magnitude (a
  student's parameter count).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
class History:
    """What the GPs learn from, already in the cube and in "larger is better" form."""

    X: np.ndarray  # (n, d) COMPLETE trials
    Y: np.ndarray  # (n, m) objectives, maximised, log scale where asked
    feasible: np.ndarray  # (n,) every constraint <= 0 (all True without constraints)
    X_constraints: np.ndarray | None = None  # (k, d) finished trials that carry constraints
    C: np.ndarray | None = None  # (k, c) constraint values, feasible when <= 0
    X_pending: np.ndarray | None = None  # (p, d) RUNNING trials


def read_history(
    study: Study,
    trial: FrozenTrial,
    cube: CubeEncoding,
    log_objectives: Sequence[bool] | None,
) -> History:
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and cube.covers(t.params)]
    X = np.array([cube.encode(t.params) for t in complete]).reshape(len(complete), cube.dim)
    values = np.array([t.values for t in complete], float).reshape(len(complete), -1)
    Y = objectives(study.directions, values, log_objectives)

    keyed = [t for t in trials if t.state in FINISHED and t.constraints]
    keys = sorted(set.intersection(*(set(t.constraints) for t in keyed))) if keyed else []
    keyed = [t for t in keyed if cube.covers(t.params)]
    X_constraints = C = None
    if keys and keyed:
        X_constraints = np.array([cube.encode(t.params) for t in keyed])
        C = np.array([[t.constraints[k] for k in keys] for t in keyed], dtype=float)
    feasible = np.array([all(v <= 0.0 for v in t.constraints.values()) for t in complete], bool)

    running = [
        t
        for t in trials
        if t.state == TrialState.RUNNING and t.number != trial.number and cube.covers(t.params)
    ]
    X_pending = np.array([cube.encode(t.params) for t in running]) if running else None
    return History(X, Y, feasible, X_constraints, C, X_pending)


def objectives(
    directions: Sequence[StudyDirection],
    values: np.ndarray,
    log_objectives: Sequence[bool] | None = None,
) -> np.ndarray:
    """Objective values as the GP sees them: finite, log where due, larger is better."""
    columns = []
    for i, direction in enumerate(directions):
        column = values[:, i]
        finite = column[np.isfinite(column)]
        low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
        column = np.clip(np.nan_to_num(column, nan=low, posinf=high, neginf=low), low, high)
        if _log_scale(i, direction, column, log_objectives):
            column = np.log(column)
        columns.append(-column if direction == StudyDirection.MINIMIZE else column)
    return np.stack(columns, axis=1)


def _log_scale(
    i: int, direction: StudyDirection, column: np.ndarray, log_objectives: Sequence[bool] | None
) -> bool:
    positive = bool(np.all(column > 0))
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
        and len(column) > 0
        and math.log(column.max() / column.min()) >= math.log(_AUTO_LOG_SPAN)
    )
