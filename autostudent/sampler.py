"""The product's sampler: multi-objective, constrained Bayesian optimisation as an Optuna sampler.

``BoTorchSampler`` *is* an ``optuna.samplers.BaseSampler``::

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=BoTorchSampler(seed=0))

- The first ``n_startup_trials`` proposals are points of one scrambled Sobol sequence: trial
  number ``n`` takes the ``n``-th point, its ``k``-th suggested parameter the ``k``-th
  coordinate, so parallel workers get distinct, well spread points and a define-by-run space
  needs no declaration.
- Then each proposal fits GPs to the COMPLETE trials only (a PRUNED or FAILed trial's values are
  low-fidelity or missing) and maximises qLogEHVI (several objectives) or qLogEI (one) over the
  posterior-mean (denoised) incumbents. RUNNING trials are pending points (Kriging believer) so
  that parallel workers do not get the same proposal. ``_sampler_botorch`` says why.
- Hard caps are Optuna 5 constraints, read exactly as ``GPSampler`` reads them
  (``FrozenTrial.constraints``, set with ``Trial.set_constraint(key, value)``, feasible when every
  value is <= 0), so one study works with either sampler. Every finished trial that carries
  constraint values trains the constraint GP, infeasible, pruned and failed ones included: a
  parameter count is exact whatever happened to training.
- A minimised objective is modelled in log scale when ``log_objectives`` says so, or, when it is
  ``None``, when all its values are positive and span at least two orders of magnitude (a
  student's parameter count).
- A proposal is a pure function of the seed, the trial number, the history and the previous fit
  of this sampler instance (the warm start of the GP hyperparameters), so the same seed driving
  the same sequence of histories gives the same proposals.
- Any error inside BoTorch falls back to the Sobol point with a ``ProposalFallbackWarning``; a
  search is never stopped by its sampler.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autostudent._sampler_botorch import History, ProposalSettings, propose
from autostudent._sampler_encoding import CubeEncoding, unit_to_value

if TYPE_CHECKING:
    from optuna.study import Study

__all__ = ["BoTorchSampler", "ProposalFallbackWarning"]

_logger = logging.getLogger(__name__)

# Width of the startup Sobol sequence: a trial's k-th parameter uses coordinate k mod this.
_SOBOL_DIM = 64
# A minimised positive objective spanning this ratio is modelled in log scale (log_objectives=None).
_AUTO_LOG_SPAN = 100.0
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class ProposalFallbackWarning(RuntimeWarning):
    """The BoTorch proposal failed; the trial got a quasi-random point instead."""


class BoTorchSampler(BaseSampler):
    """Bayesian optimisation over floats, ints and categoricals with BoTorch (see module doc).

    Args:
        seed: Seeds the Sobol sequence and every proposal; ``None`` picks one at random.
        n_startup_trials: COMPLETE trials needed before the GP takes over (at least 2 are).
        log_objectives: Per objective, model ``log(value)`` (values must be positive). ``None``:
            decide per minimised objective from its values (see module doc).
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        log_objectives: Sequence[bool] | None = None,
    ) -> None:
        self._seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._n_startup_trials = n_startup_trials
        self._log_objectives = None if log_objectives is None else list(log_objectives)
        self._settings = ProposalSettings()
        self._search_space = IntersectionSearchSpace()
        self._warm_start: dict[str, Any] = {}
        self._sobol_row: tuple[int, np.ndarray] | None = None
        self._sobol_engine: Any = None

    def reseed_rng(self) -> None:
        self._seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._sobol_row = self._sobol_engine = None

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < max(self._n_startup_trials, 2):
            return {}  # startup: every parameter comes from the Sobol sequence
        return {
            name: distribution
            for name, distribution in self._search_space.calculate(study).items()
            if not distribution.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        if self._log_objectives is not None and len(self._log_objectives) != len(study.directions):
            raise ValueError(
                f"log_objectives has {len(self._log_objectives)} entries for a study with "
                f"{len(study.directions)} objectives"
            )
        start = time.perf_counter()
        try:
            cube = CubeEncoding(search_space)
            history = self._history(study, trial, cube)
            x = propose(
                history,
                cube,
                seed=self._proposal_seed(trial.number),
                warm_start=self._warm_start,
                settings=self._settings,
            )
        except Exception as error:  # a search must never stop because of its sampler
            self._warm_start.clear()
            warnings.warn(
                f"BoTorchSampler: proposal for trial {trial.number} failed "
                f"({type(error).__name__}: {error}); using a quasi-random point",
                ProposalFallbackWarning,
                stacklevel=2,
            )
            return {}
        seconds = time.perf_counter() - start
        _logger.debug(
            "trial %d: proposal from %d trials in %.3f s", trial.number, len(history.X), seconds
        )
        return cube.decode(x)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        coordinate = self._sobol(trial.number)[len(trial.params) % _SOBOL_DIM]
        return unit_to_value(param_distribution, float(coordinate))

    def _sobol(self, number: int) -> np.ndarray:
        """Point ``number`` of this sampler's scrambled Sobol sequence (cached per trial)."""
        if self._sobol_row is None or self._sobol_row[0] != number:
            import torch

            if self._sobol_engine is None:  # scrambling costs ~50 ms: build it once
                self._sobol_engine = torch.quasirandom.SobolEngine(
                    _SOBOL_DIM, scramble=True, seed=self._seed
                )
            engine = self._sobol_engine
            engine.reset()
            engine.fast_forward(number)
            self._sobol_row = (number, engine.draw(1, dtype=torch.float64)[0].numpy())
        return self._sobol_row[1]

    def _proposal_seed(self, number: int) -> int:
        return int(np.random.SeedSequence([self._seed, number]).generate_state(1)[0] >> 1)

    def _history(self, study: Study, trial: FrozenTrial, cube: CubeEncoding) -> History:
        trials = study.get_trials(deepcopy=False, states=(*_FINISHED, TrialState.RUNNING))
        complete = [t for t in trials if t.state == TrialState.COMPLETE and cube.covers(t.params)]
        X = np.array([cube.encode(t.params) for t in complete])
        Y = self._objectives(study.directions, np.array([t.values for t in complete], float))

        keyed = [t for t in trials if t.state in _FINISHED and t.constraints]
        keys = sorted(set.intersection(*(set(t.constraints) for t in keyed))) if keyed else []
        keyed = [t for t in keyed if cube.covers(t.params)]
        X_constraints = C = None
        if keys and keyed:
            X_constraints = np.array([cube.encode(t.params) for t in keyed])
            C = np.array([[t.constraints[k] for k in keys] for t in keyed], dtype=float)
        feasible = np.array([all(v <= 0.0 for v in t.constraints.values()) for t in complete])

        running = [
            t
            for t in trials
            if t.state == TrialState.RUNNING and t.number != trial.number and cube.covers(t.params)
        ]
        X_pending = np.array([cube.encode(t.params) for t in running]) if running else None
        return History(X, Y, feasible, X_constraints, C, X_pending)

    def _objectives(self, directions: Sequence[StudyDirection], values: np.ndarray) -> np.ndarray:
        """Objective values as the GP sees them: finite, log where due, larger is better."""
        columns = []
        for i, direction in enumerate(directions):
            column = values[:, i]
            finite = column[np.isfinite(column)]
            low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
            column = np.clip(np.nan_to_num(column, nan=low, posinf=high, neginf=low), low, high)
            if self._log_scale(i, direction, column):
                column = np.log(column)
            columns.append(-column if direction == StudyDirection.MINIMIZE else column)
        return np.stack(columns, axis=1)

    def _log_scale(self, i: int, direction: StudyDirection, column: np.ndarray) -> bool:
        positive = bool(np.all(column > 0))
        if self._log_objectives is not None:
            if self._log_objectives[i] and not positive:
                warnings.warn(
                    f"BoTorchSampler: objective {i} has values <= 0, modelled without log",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return False
            return self._log_objectives[i]
        return (
            direction == StudyDirection.MINIMIZE
            and positive
            and math.log(column.max() / column.min()) >= math.log(_AUTO_LOG_SPAN)
        )
