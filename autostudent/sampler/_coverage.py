"""Coverage of the size range: no architecture trained over and over, gaps in the front filled.

Two rules, both computed exactly from a point (``measure``: its student's sizes, counted from
the spec without building it), so they act like known constraints inside the acquisition's
optimisation rather than after it:

- **Repeats.** An architecture (the same sizes: params and FLOPs) that ``max_repeats`` trials
  have trained (COMPLETE, PRUNED) or are training (RUNNING) is not proposed again. Without it,
  a hypervolume on log size kept re-tuning the KD settings of the space's smallest net: 59 of
  119 trials on a ResNet-20 teacher, 16 of 40 on the demo.
- **Gaps.** A share of the proposals (``gap_share``) must land in the largest empty interval of
  log size that the front leaves between ``teacher / 50`` and ``teacher / 3`` (the sizes users
  ask a student for), when that interval spans more than ``min_gap_ratio``; inside it they
  maximise the hypervolume improvement as usual. The log-size hypervolume alone values the
  smallest corner most and left the front at 3.4K-7.4K params for a 272K-param teacher. With
  ``retry_gaps`` off, a gap proposal that trained a student (COMPLETE or PRUNED) occupies its
  size from then on, front or not: the search has looked there, and the next gap proposal goes
  to the next empty interval instead of the same one again (with it on, an interval is asked
  again until a student there reaches the front: 129 gap proposals in 12 demo-sized searches
  put 16 students on a front, the rest were pruned or dominated at the proxy's fidelity).

A candidate gets a *tier*: 0 meets every rule, 1 misses only the gap, 2 is a repeat, 3 breaks a
known constraint (a cap) or has no architecture. The optimiser keeps the lowest tier it can find,
and the sampler stores any proposal above tier 0 (user attribute ``proposal_relaxed``).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Sizes = Mapping[str, float]
Measure = Callable[[Mapping[str, Any]], Sizes | None]

OK, OFF_GAP, REPEAT, INFEASIBLE = 0, 1, 2, 3
RELAXED = {OFF_GAP: "gap", REPEAT: "repeats", INFEASIBLE: "known constraints"}


@dataclass(frozen=True)
class Coverage:
    """How the sampler covers the size range (see the module docstring).

    ``size`` names the size that measures a gap (a key of ``measure``'s result: "params" or
    "flops"), ``objective`` the index of the study's objective it is; the teacher's size is read
    from the study (user attribute ``teacher``) at every proposal, so no gap without one. The
    range ends at the objective's hypervolume reference (the cap) when that is lower.
    """

    measure: Measure
    size: str = "params"
    objective: int = 1
    max_repeats: int = 3
    gap_share: float = 1 / 3
    gap_fractions: tuple[float, float] = (1 / 50, 1 / 3)
    min_gap_ratio: float = 2.0
    retry_gaps: bool = True


def architecture(sizes: Sizes | None) -> Hashable | None:
    """What makes two trials the same student: all its sizes (params and FLOPs)."""
    return None if sizes is None else tuple(sorted(sizes.items()))


def repeats(points: Iterable[Mapping[str, Any]], measure: Measure) -> Counter:
    """How many of ``points`` (trials that trained or are training) built each architecture."""
    return Counter(key for p in points if (key := architecture(measure(p))) is not None)


def largest_gap(
    front: Sequence[float], low: float, high: float, min_ratio: float
) -> tuple[float, float] | None:
    """The widest interval of log size between ``low`` and ``high`` that holds no size of
    ``front``, as its middle half in log size (a proposal at a gap's edge would crowd the
    student there); None when no interval spans more than ``min_ratio``."""
    if not 0 < low < high:
        return None
    inside = sorted(math.log(s) for s in front if low < s < high)
    edges = [math.log(low), *inside, math.log(high)]
    width, start = max((b - a, a) for a, b in itertools.pairwise(edges))
    if width <= math.log(min_ratio):
        return None
    return math.exp(start + width / 4), math.exp(start + 3 * width / 4)


def wants_gap(seed: int, share: float) -> bool:
    """Whether this proposal targets the gap: a pure function of its seed, drawn from a stream
    of its own so that the ParEGO draw (``_propose.trade_off``) is unchanged."""
    import numpy as np

    return bool(np.random.default_rng([seed, 16]).random() < share)


def tiers(
    measure: Measure,
    size: str,
    counts: Counter,
    max_repeats: int,
    known: Callable[[Mapping[str, Any]], bool] | None,
    gap: tuple[float, float] | None,
) -> Callable[[Mapping[str, Any]], int]:
    """A point's tier (OK, OFF_GAP, REPEAT, INFEASIBLE), memoised for one proposal."""

    def _tier(params: Mapping[str, Any]) -> int:
        if known is not None and not known(params):
            return INFEASIBLE
        sizes = measure(params)
        if sizes is None:
            return INFEASIBLE
        if counts[architecture(sizes)] >= max_repeats:
            return REPEAT
        if gap is not None and not gap[0] <= sizes[size] <= gap[1]:
            return OFF_GAP
        return OK

    return memoised(_tier)


def memoised(tier: Callable[[Mapping[str, Any]], int]) -> Callable[[Mapping[str, Any]], int]:
    """``tier`` computed once per point (the optimiser ranks a finalist more than once)."""
    seen: dict[tuple, int] = {}

    def cached(params: Mapping[str, Any]) -> int:
        key = tuple(params.items())
        if key not in seen:
            seen[key] = tier(params)
        return seen[key]

    return cached
