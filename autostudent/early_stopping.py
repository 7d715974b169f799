"""Early stopping: which trials go on training after each rung (a Ray Tune ``TrialScheduler``).

Rules by name (``search.early_stopping``):

- ``moasha``: multi-objective asynchronous successive halving (MO-ASHA; Schmucker et al. 2021,
  Syne Tune's ``MOASHA``). A trial reaching a rung is ranked among every trial recorded there on
  the study's objectives *together* — (accuracy at the rung, sizes), directions and log scales
  from ``objectives.py`` — and goes on when it is in the top ``ceil(n / η)``. The order is
  non-dominated sorting (front by front), and inside a front the crowding distance of NSGA-II
  (extremes first, then the most isolated): scale-free per objective, deterministic, and the
  smallest and the most accurate student of a front always rank first. The rung is the
  arrival's *size neighbourhood*: the trials recorded there whose every minimised objective (a
  size, exact at any fidelity) is within a factor ``SIZE_BAND`` of the arrival's. Ranked against
  the whole rung, a low-fidelity accuracy is mostly noise (epoch 1 of a one-cycle schedule) and
  the order falls back on size: measured on a ResNet-20 teacher (digits), every one of 12
  students above 12.7K params was stopped at epoch 1, the front stayed at 3.4K-6.6K params, and
  the sampler's proposals in the front's gap were wasted. The default for multi-objective studies.
- ``asha``: Ray's ASHA on validation accuracy alone (the default for accuracy-only studies).
- ``none``: every trial trains its full budget.

A trial whose config says ``full_budget`` (a gap proposal when ``search.prune_gap_proposals`` is
false) is recorded at each rung like any other, so later arrivals are ranked against it, but
MO-ASHA never stops it. A stopped trial is told PRUNED with the epochs it reached
(executor.py), never COMPLETE.
Decisions are asynchronous as in ASHA: each trial is judged when it reaches a rung, against the
trials recorded there so far; nobody waits for a rung to fill.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from autostudent.objectives import objective
from autostudent.registry import Registry

# ---------------------------------------------------------------- pure ranking (no Ray needed)


def nondominated_fronts(costs: np.ndarray) -> list[np.ndarray]:
    """Indices of ``costs`` (n, k; every column minimised) split into Pareto fronts, best first."""
    remaining = np.arange(len(costs))
    fronts = []
    while remaining.size:
        sub = costs[remaining]
        dominated = np.array(
            [bool(np.any(np.all(sub <= row, axis=1) & np.any(sub < row, axis=1))) for row in sub]
        )
        fronts.append(remaining[~dominated])
        remaining = remaining[dominated]
    return fronts


def crowding_distance(costs: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row within one front: per objective, the gap between
    its two neighbours normalised by the front's range; the extremes get infinity."""
    n, k = costs.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(costs[:, j], kind="stable")
        col = costs[order, j]
        distance[order[0]] = distance[order[-1]] = np.inf
        span = col[-1] - col[0]
        if span > 0:
            distance[order[1:-1]] += (col[2:] - col[:-2]) / span
    return distance


def rung_order(costs: np.ndarray) -> np.ndarray:
    """Every row's position in the rung's ranking (0 = best): front by front, inside a front by
    crowding distance (largest first), ties by arrival (row order)."""
    position = np.empty(len(costs), dtype=int)
    at = 0
    for front in nondominated_fronts(costs):
        crowd = crowding_distance(costs[front])
        ranked = front[np.lexsort((front, -crowd))]
        position[ranked] = np.arange(at, at + len(ranked))
        at += len(ranked)
    return position


def promotes(
    costs: np.ndarray,
    reduction_factor: float,
    row: int = -1,
    sizes: Sequence[int] = (),
    band: float = math.inf,
) -> bool:
    """Does ``row`` (by default the newest arrival, the last row) rank in the top
    ``ceil(n / reduction_factor)`` of the rung ``costs``? The first arrival always goes on.
    With ``sizes`` (columns of log10 sizes), the rung is ``row``'s size neighbourhood: the rows
    whose every size column is within a factor ``band`` of ``row``'s."""
    row = row % len(costs)
    if sizes:
        columns = list(sizes)
        near = np.abs(costs[:, columns] - costs[row, columns]) <= math.log10(band)
        rows = np.flatnonzero(near.all(axis=1))
        costs, row = costs[rows], int(np.searchsorted(rows, row))
    n = len(costs)
    return bool(rung_order(costs)[row] < math.ceil(n / reduction_factor))


def cost_vector(objectives: Sequence[str], result: Mapping) -> np.ndarray | None:
    """A result as minimised costs in the study's objective order (log10 for log-scale sizes,
    negated when maximised), or None when the result lacks one of them (a failure report)."""
    costs = []
    for name in objectives:
        o = objective(name)
        value = result.get(o.result_key)
        if value is None or not math.isfinite(value):
            return None
        if o.log_scale:
            value = math.log10(max(value, 1e-12))
        costs.append(-value if o.maximize else value)
    return np.array(costs, dtype=float)


def milestones(grace_period: int, max_t: int, reduction_factor: float) -> list[float]:
    """The rungs below the full budget: grace · η^k < max_t."""
    out, t = [], float(grace_period)
    while t < max_t:
        out.append(t)
        t *= reduction_factor
    return out


# ---------------------------------------------------------------- the Tune scheduler

# A trial config key: True when MO-ASHA must let the trial train its full budget.
FULL_BUDGET = "full_budget"

# A rung arrival is ranked against the trials within this factor of its size (each way).
SIZE_BAND = 2.0


class MOASHAScheduler(FIFOScheduler):
    """Asynchronous successive halving on the study's objectives together (one bracket)."""

    def __init__(
        self,
        objectives: Sequence[str],
        *,
        time_attr: str = "epoch",
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 2,
        size_band: float = SIZE_BAND,
    ) -> None:
        super().__init__()
        if reduction_factor <= 1 or grace_period < 1 or max_t < 1:
            raise ValueError("needs reduction_factor > 1, grace_period ≥ 1 and max_t ≥ 1")
        self.objectives = list(objectives)
        # sizes are exact at any fidelity: the arrival is ranked among students of its size
        self.sizes = [i for i, name in enumerate(self.objectives) if not objective(name).maximize]
        self.size_band = size_band
        self.time_attr = time_attr
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        # milestone → {trial id: costs recorded when it reached that rung}
        self.rungs: dict[float, dict[str, np.ndarray]] = {
            m: {} for m in milestones(grace_period, max_t, reduction_factor)
        }
        self.stopped = 0
        self.kept = 0  # trials that would have been stopped but train their full budget

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        # Tune's metric/mode (validation accuracy) serve its bookkeeping; ranking uses the
        # study's objectives, fixed at construction.
        return True

    def decide(self, trial_id: str, result: Mapping, full_budget: bool = False) -> str:
        """CONTINUE or STOP for one reported result (pure bookkeeping, no Tune objects); a
        ``full_budget`` trial is recorded at its rungs but goes on to ``max_t``."""
        now = result.get(self.time_attr)
        costs = cost_vector(self.objectives, result)
        if now is None or costs is None:
            return TrialScheduler.CONTINUE
        if now >= self.max_t:
            return TrialScheduler.STOP
        for milestone in sorted(self.rungs, reverse=True):
            recorded = self.rungs[milestone]
            if now < milestone or trial_id in recorded:
                continue
            rung = np.stack([*recorded.values(), costs])
            recorded[trial_id] = costs
            if promotes(rung, self.reduction_factor, sizes=self.sizes, band=self.size_band):
                return TrialScheduler.CONTINUE
            if full_budget:
                self.kept += 1
                return TrialScheduler.CONTINUE
            self.stopped += 1
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        return self.decide(trial.trial_id, result, bool(trial.config.get(FULL_BUDGET)))

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        if result:  # a rung it reached unreported still records it
            self.decide(trial.trial_id, result, bool(trial.config.get(FULL_BUDGET)))

    def debug_string(self) -> str:
        rungs = ", ".join(f"epoch {m:g}: {len(r)}" for m, r in sorted(self.rungs.items()))
        kept = f", kept to full budget {self.kept}" if self.kept else ""
        return f"MO-ASHA on {self.objectives}: stopped {self.stopped}{kept} ({rungs})"

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


# ---------------------------------------------------------------- the rules, by name

SchedulerFactory = Callable[..., TrialScheduler]
EARLY_STOPPING: Registry[SchedulerFactory] = Registry("early-stopping rule")


def make_scheduler(
    name: str,
    *,
    objectives: Sequence[str],
    max_epochs: int,
    grace_period: int,
    reduction_factor: int,
) -> TrialScheduler:
    """The Tune scheduler of a rule; a one-epoch budget has no rung to stop at (FIFO)."""
    if max_epochs <= 1:
        return FIFOScheduler()
    return EARLY_STOPPING.get(name)(
        objectives=list(objectives),
        max_epochs=max_epochs,
        grace_period=min(grace_period, max_epochs),
        reduction_factor=reduction_factor,
    )


@EARLY_STOPPING.register("moasha")
def _moasha(objectives, max_epochs, grace_period, reduction_factor) -> TrialScheduler:
    return MOASHAScheduler(
        objectives,
        max_t=max_epochs,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
    )


@EARLY_STOPPING.register("asha")
def _asha(objectives, max_epochs, grace_period, reduction_factor) -> TrialScheduler:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="epoch",
        max_t=max_epochs,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
    )


@EARLY_STOPPING.register("none")
def _none(objectives, max_epochs, grace_period, reduction_factor) -> TrialScheduler:
    return FIFOScheduler()
