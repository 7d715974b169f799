"""``BoTorchSampler``: multi-objective, constrained Bayesian optimisation as an Optuna sampler.

- Until ``n_startup_trials`` trials have finished (pruned ones count), proposals are points of
  one scrambled Sobol sequence: trial number ``n`` takes the ``n``-th point, its ``k``-th
  suggested parameter the ``k``-th coordinate, so parallel workers get distinct, well spread
  points and a define-by-run space needs no declaration.
- Then each proposal fits GPs to the study's history (``_history``: every trial teaches them,
  pruned ones through their learning curves) and maximises qLogEHVI (several objectives,
  against the study's hypervolume reference when given; in half of the proposals, drawn from
  their seeds, ParEGO's qLogEI of one random trade-off instead) or qLogEI (one) (``_propose``).
- Known constraints (a student's size against its cap) are checked on every candidate, the
  quasi-random ones included, so no proposal is over a cap the sampler could compute. With a
  declared ``search_space`` the startup points are relative too, so that holds from trial 0.
- With a ``coverage`` (``_coverage``): no architecture is trained more than ``max_repeats``
  times, and a share of the proposals fill the largest gap in the front's log size between
  teacher / 50 and teacher / 3, both checked on every candidate like the known constraints.
- Every trial stores how it was proposed (user attribute ``proposal``: ``sobol``, ``ehvi``,
  ``parego``, ``ei`` or ``gap``) and, when no candidate met every rule, which one it gave up
  (``proposal_relaxed``: ``gap``, ``repeats`` or ``known constraints``).
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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autostudent.sampler import _coverage
from autostudent.sampler._acquisition import front as front_rows
from autostudent.sampler._coverage import Coverage
from autostudent.sampler._encoding import CubeEncoding, unit_to_value
from autostudent.sampler._history import KnownConstraints, TrialRecords, read_history
from autostudent.sampler._propose import propose
from autostudent.sampler._settings import ProposalSettings

if TYPE_CHECKING:
    from optuna.study import Study

_logger = logging.getLogger(__name__)

# Width of the startup Sobol sequence: a trial's k-th parameter uses coordinate k mod this.
_SOBOL_DIM = 64
FALLBACK_ATTR = "sampler_fallback"
PROPOSAL_ATTR = "proposal"
RELAXED_ATTR = "proposal_relaxed"
_TRAINED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
# Quasi-random points tried to replace a startup or fallback point that breaks a known constraint.
_REPAIR_DRAWS = 64


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
        n_startup_trials: Finished trials (COMPLETE or PRUNED) needed before the GP takes over;
            at least 2 COMPLETE ones are needed too.
        log_objectives: Per objective, model ``log(value)`` (values must be positive). ``None``:
            decide per minimised objective from its values (see ``_history``).
        records: What PRUNED and FAILed trials still tell (exact values, learning curves).
        known_constraints: Constraints computed exactly from a point; never violated by a
            proposal when a feasible candidate exists.
        reference_point: Per objective, the hypervolume reference in the objectives' units
            (the study's); ``None``: inferred from the observed front at each proposal.
        search_space: Declared up front: every proposal, the startup ones included, is
            relative over it (needed for known constraints to hold from the first trial).
        coverage: The repeat and gap rules (``_coverage``); ``None``: neither.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        log_objectives: Sequence[bool] | None = None,
        records: TrialRecords | None = None,
        known_constraints: KnownConstraints | None = None,
        reference_point: Sequence[float] | None = None,
        search_space: Mapping[str, BaseDistribution] | None = None,
        coverage: Coverage | None = None,
    ) -> None:
        self._seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
        self._n_startup_trials = n_startup_trials
        self._log_objectives = None if log_objectives is None else list(log_objectives)
        self._records = records
        self._known = known_constraints
        self._reference = None if reference_point is None else list(reference_point)
        self._declared = dict(sorted(search_space.items())) if search_space else None
        self._settings = ProposalSettings()
        self._coverage = coverage
        self._measured: dict[tuple, Any] = {}  # a point's sizes, counted once per sampler
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
        """Enough finished trials to model: pruned ones count (they teach the GPs through their
        learning curves, as TPE counts them), and two must be COMPLETE (the incumbents). Counting
        COMPLETE ones only kept a study whose early stopping prunes 85 % of its trials (the demo)
        quasi-random to its end."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        complete = sum(t.state == TrialState.COMPLETE for t in finished)
        return complete >= 2 and len(finished) >= self._n_startup_trials

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self._declared is not None:
            space = self._declared
        elif not self._started(study):
            return {}  # startup: every parameter comes from the Sobol sequence
        else:
            space = self._search_space.calculate(study)
        return {name: d for name, d in space.items() if not d.single()}

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
        seed = self._proposal_seed(trial.number)
        if not self._started(study):
            tier, _ = self._tiers(study, trial, search_space, seed, started=False)
            point, relaxed = self._quasi_random(trial.number, search_space, tier)
            self._record(study, trial, "sobol", relaxed)
            return point
        with self._lock:
            start = time.perf_counter()
            cube = CubeEncoding(search_space)
            history = read_history(
                study,
                trial,
                cube,
                log_objectives=self._log_objectives,
                records=self._records,
                known=self._known,
                reference=self._reference,
            )
            tier, gap = self._tiers(study, trial, search_space, seed, started=True)
            try:
                x, kind = propose(
                    history,
                    cube,
                    seed=seed,
                    warm_start=self._warm_start,
                    settings=self._settings,
                    tier=None if tier is None else (lambda row: tier(cube.decode(row))),
                    parego=gap is None,
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
                tier, _ = self._tiers(study, trial, search_space, seed, started=False)
                point, relaxed = self._quasi_random(trial.number, search_space, tier)
                self._record(study, trial, "sobol", relaxed)
                return point
            point = cube.decode(x)
            level = _coverage.OK if tier is None else tier(point)
            self._record(study, trial, "gap" if gap else kind, _coverage.RELAXED.get(level))
            _logger.debug(
                "trial %d: %s proposal from %d trials in %.3f s",
                trial.number,
                "gap" if gap else kind,
                len(history.X),
                time.perf_counter() - start,
            )
        return point

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        coordinate = self._sobol(trial.number)[len(trial.params) % _SOBOL_DIM]
        return unit_to_value(param_distribution, float(coordinate))

    def _feasibility(
        self, search_space: Mapping[str, BaseDistribution]
    ) -> Callable[[Mapping[str, Any]], bool] | None:
        """A point's known constraints all <= 0; None without."""
        if self._known is None:
            return None
        known = self._known
        return lambda params: all(v <= 0.0 for v in known.evaluate(params).values())

    def _measure(self, params: Mapping[str, Any]) -> Any:
        """``coverage.measure`` of a point, counted once per sampler (a trial is measured at
        every later proposal)."""
        assert self._coverage is not None
        key = tuple(sorted(params.items()))
        if key not in self._measured:
            self._measured[key] = self._coverage.measure(params)
        return self._measured[key]

    def _tiers(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: Mapping[str, BaseDistribution],
        seed: int,
        *,
        started: bool,
    ) -> tuple[Callable[[Mapping[str, Any]], int] | None, tuple[float, float] | None]:
        """This proposal's tier function (``_coverage``; None without rules) and the size
        interval it must fill (None: not a gap proposal)."""
        known = self._feasibility(search_space)
        coverage = self._coverage
        if coverage is None:
            if known is None:
                return None, None
            return _coverage.memoised(
                lambda p: _coverage.OK if known(p) else _coverage.INFEASIBLE
            ), None
        # another thread's trial may not have its point yet: only whole points are measured
        trained = [
            t
            for t in study.get_trials(deepcopy=False, states=_TRAINED)
            if t.number != trial.number and search_space.keys() <= t.params.keys()
        ]
        counts = _coverage.repeats((t.params for t in trained), self._measure)
        gap = None
        if started and _coverage.wants_gap(seed, coverage.gap_share):
            gap = self._gap(study, trained, coverage)
        tier = _coverage.tiers(
            self._measure, coverage.size, counts, coverage.max_repeats, known, gap
        )
        return tier, gap

    def _gap(
        self, study: Study, trained: Sequence[FrozenTrial], coverage: Coverage
    ) -> tuple[float, float] | None:
        """The middle of the largest log-size gap that the feasible COMPLETE front, the
        RUNNING trials (and without ``retry_gaps`` the trained gap proposals) leave between the
        teacher's size x ``gap_fractions`` (at most the size's hypervolume reference, the cap)."""
        teacher = study.user_attrs.get("teacher", {}).get(coverage.size)
        if not teacher:
            return None
        complete = [t for t in trained if t.state == TrialState.COMPLETE]
        signs = [1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
        values = np.array([t.values for t in complete], float).reshape(len(complete), -1)
        feasible = np.array([all(v <= 0 for v in t.constraints.values()) for t in complete], bool)
        front = [complete[i] for i in front_rows(values * signs, feasible)] if complete else []
        running = [t for t in trained if t.state == TrialState.RUNNING]
        # without retries, a gap already looked into is not a gap any more
        tried = [
            t
            for t in trained
            if t.state != TrialState.RUNNING and t.user_attrs.get(PROPOSAL_ATTR) == "gap"
        ]
        occupied = front + running + ([] if coverage.retry_gaps else tried)
        sizes = [s[coverage.size] for t in occupied if (s := self._measure(t.params))]
        low, high = (teacher * f for f in coverage.gap_fractions)
        if self._reference is not None:  # nothing above the cap is a student to aim at
            high = min(high, self._reference[coverage.objective])
        return _coverage.largest_gap(sizes, low, high, coverage.min_gap_ratio)

    @staticmethod
    def _record(study: Study, trial: FrozenTrial, kind: str, relaxed: str | None) -> None:
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, PROPOSAL_ATTR, kind)
        if relaxed is not None:
            storage.set_trial_user_attr(trial._trial_id, RELAXED_ATTR, relaxed)

    def _quasi_random(
        self,
        number: int,
        search_space: dict[str, BaseDistribution],
        tier: Callable[[Mapping[str, Any]], int] | None,
    ) -> tuple[dict[str, Any], str | None]:
        """Trial ``number``'s Sobol point; if it is above tier 0 (a known constraint or the
        repeat rule rejects it), the first point of tier 0 of a sequence scrambled for this
        trial, else the lowest tier seen (and the rule it gives up)."""
        point = self._sobol_point(number, search_space)
        if tier is None:
            return point, None
        best = (tier(point), 0, point)
        if best[0] == _coverage.OK:
            return point, None
        import torch

        engine = torch.quasirandom.SobolEngine(
            len(search_space), scramble=True, seed=self._proposal_seed(number)
        )
        for index, row in enumerate(engine.draw(_REPAIR_DRAWS, dtype=torch.float64).numpy()):
            candidate = {
                name: unit_to_value(distribution, float(u))
                for (name, distribution), u in zip(search_space.items(), row, strict=True)
            }
            best = min(best, (tier(candidate), index + 1, candidate), key=lambda b: b[:2])
            if best[0] == _coverage.OK:
                break
        return best[2], _coverage.RELAXED.get(best[0])

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
