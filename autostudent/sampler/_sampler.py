"""``BoTorchSampler``: multi-objective, constrained Bayesian optimisation as an Optuna sampler.

- The first ``n_startup_trials`` proposals are points of one scrambled Sobol sequence: trial
  number ``n`` takes the ``n``-th point, its ``k``-th suggested parameter the ``k``-th
  coordinate, so parallel workers get distinct, well spread points and a define-by-run space
  needs no declaration.
- Then each proposal fits GPs to the study's history (``_history``) and maximises qLogEHVI
  (several objectives) or qLogEI (one) (``_propose``).
- A proposal is a pure function of the seed, the trial number, the history and the previous fit
  of this sampler instance (the warm start of the GP hyperparameters), so the same seed driving
  the same sequence of histories gives the same proposals. Proposals from several threads
  (Optuna's ``n_jobs``) take turns.
- Only a numerical failure inside BoTorch/GPyTorch/linear algebra falls back to the trial's
  Sobol point; the trial stores why (user attribute ``sampler_fallback``, counted by
  ``autostudent status``) and a ``ProposalFallbackWarning`` is issued. Any other exception is a
  bug and is raised.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import FrozenTrial, TrialState

from autostudent.sampler._encoding import CubeEncoding, unit_to_value
from autostudent.sampler._history import read_history
from autostudent.sampler._propose import ProposalSettings, propose

if TYPE_CHECKING:
    from optuna.study import Study

_logger = logging.getLogger(__name__)

# Width of the startup Sobol sequence: a trial's k-th parameter uses coordinate k mod this.
_SOBOL_DIM = 64
FALLBACK_ATTR = "sampler_fallback"


class ProposalFallbackWarning(RuntimeWarning):
    """The BoTorch proposal failed numerically; the trial got its quasi-random point instead."""


def numerical_errors() -> tuple[type[BaseException], ...]:
    """What may fall back to Sobol: a GP that cannot be fitted or factorised, an acquisition
    optimiser that fails on its numbers, a numerical warning that the caller turned into an
    error. Misuse errors (tensor shapes, unsupported options) and everything else are bugs."""
    import torch
    from botorch.exceptions import errors
    from botorch.exceptions.warnings import BotorchWarning
    from gpytorch.utils.warnings import NumericalWarning
    from linear_operator.utils.errors import NanError, NotPSDError

    return (
        errors.ModelFittingError,
        errors.CandidateGenerationError,
        errors.InfeasibilityError,
        errors.InputDataError,
        errors.OptimizationGradientError,
        errors.OptimizationTimeoutError,
        NotPSDError,
        NanError,
        torch.linalg.LinAlgError,
        np.linalg.LinAlgError,
        NumericalWarning,
        BotorchWarning,
    )


class BoTorchSampler(BaseSampler):
    """Bayesian optimisation over floats, ints and categoricals with BoTorch (see module doc).

    Args:
        seed: Seeds the Sobol sequence and every proposal; ``None`` picks one at random.
        n_startup_trials: COMPLETE trials needed before the GP takes over (at least 2 are).
        log_objectives: Per objective, model ``log(value)`` (values must be positive). ``None``:
            decide per minimised objective from its values (see ``_history``).
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
        self._lock = threading.RLock()  # Optuna's n_jobs threads share one sampler

    def reseed_rng(self) -> None:
        with self._lock:
            self._seed = int(np.random.SeedSequence().generate_state(1)[0])
            self._sobol_row = self._sobol_engine = None

    def _started(self, study: Study) -> bool:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return len(complete) >= max(self._n_startup_trials, 2)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if not self._started(study):
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
        if not self._started(study):
            return self._sobol_point(trial.number, search_space)
        with self._lock:
            start = time.perf_counter()
            cube = CubeEncoding(search_space)
            history = read_history(study, trial, cube, self._log_objectives)
            try:
                x = propose(
                    history,
                    cube,
                    seed=self._proposal_seed(trial.number),
                    warm_start=self._warm_start,
                    settings=self._settings,
                )
            except numerical_errors() as error:
                self._warm_start.clear()
                reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
                study._storage.set_trial_user_attr(trial._trial_id, FALLBACK_ATTR, reason)
                warnings.warn(
                    f"BoTorchSampler: proposal for trial {trial.number} failed ({reason}); "
                    "using its quasi-random point",
                    ProposalFallbackWarning,
                    stacklevel=2,
                )
                return self._sobol_point(trial.number, search_space)
            _logger.debug(
                "trial %d: proposal from %d trials in %.3f s",
                trial.number,
                len(history.X),
                time.perf_counter() - start,
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

    def _sobol_point(
        self, number: int, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Trial ``number``'s Sobol point over a whole space, parameters in the space's order."""
        row = self._sobol(number)
        return {
            name: unit_to_value(distribution, float(row[k % _SOBOL_DIM]))
            for k, (name, distribution) in enumerate(search_space.items())
        }

    def _sobol(self, number: int) -> np.ndarray:
        """Point ``number`` of this sampler's scrambled Sobol sequence (cached per trial)."""
        with self._lock:
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
