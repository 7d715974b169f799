"""Pareto front and hypervolume of finished trials (accuracy up, size down), and the rules
that pick one student off the front for export (``PICK_RULES``; ``ranked`` gives the candidates
of the rules that choose by accuracy, for ``export --rerank``).

Sizes span orders of magnitude, so the hypervolume is taken over (accuracy, log10(ref/size)):
a student 10x smaller than the reference scores 1 on that axis, whatever the units. The
reference size is the study's cap when it has one, else the teacher's value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from autostudent.errors import UserError
from autostudent.registry import Registry


def pareto_mask(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (n, k)."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    signs = np.where(np.asarray(maximize), -1.0, 1.0)
    costs = points * signs  # now every objective is minimised
    mask = np.ones(len(costs), dtype=bool)
    for i, row in enumerate(costs):
        dominated_by = np.all(costs <= row, axis=1) & np.any(costs < row, axis=1)
        mask[i] = not dominated_by.any()
    return mask


def size_score(size: float, reference: float) -> float:
    """log10(reference / size), clipped at 0: the size axis of the hypervolume."""
    if size <= 0 or reference <= 0:
        return 0.0
    return max(0.0, math.log10(reference / size))


def hypervolume(
    accuracy: Sequence[float], sizes: Sequence[Sequence[float]], references: Sequence[float]
) -> float:
    """Hypervolume dominated by the trials over the origin in (accuracy, size scores...).

    ``sizes[j][i]`` is trial i's value of the j-th size objective, ``references[j]`` its
    reference; all axes are maximised from 0.
    """
    if len(accuracy) == 0:
        return 0.0
    cols = [np.asarray(accuracy, dtype=float)]
    for values, ref in zip(sizes, references, strict=True):
        cols.append(np.array([size_score(v, ref) for v in values]))
    pts = np.stack(cols, axis=1)
    pts = pts[np.all(pts > 0, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[pareto_mask(pts, [True] * pts.shape[1])]
    if pts.shape[1] == 2:  # exact sweep, the common case
        pts = pts[np.argsort(-pts[:, 0])]
        area, best_y = 0.0, 0.0
        for x, y in pts:
            if y > best_y:
                area += x * (y - best_y)
                best_y = y
        return float(area)
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    hv = Hypervolume(ref_point=torch.zeros(pts.shape[1], dtype=torch.double))
    return float(hv.compute(torch.as_tensor(pts, dtype=torch.double)))


# --- picking one student off the front ----------------------------------------------------------


@dataclass(frozen=True)
class FrontPoint:
    """One non-dominated student: its trial number, accuracy in [0, 1] and size (params...)."""

    trial: int
    accuracy: float
    size: float


# (front, the rule's argument after ':' or None) → the chosen point
PickRule = Callable[[Sequence[FrontPoint], "str | None"], FrontPoint]
PICK_RULES: Registry[PickRule] = Registry("pick rule")


def pick(front: Sequence[FrontPoint], rule: str) -> FrontPoint:
    """The front point that ``rule`` (``NAME`` or ``NAME:ARG``) chooses; errors name --pick."""
    name, _, arg = rule.partition(":")
    try:
        chosen = PICK_RULES.get(name)
    except UserError as exc:
        raise UserError(f"--pick: {exc}") from None
    if not front:
        raise UserError("--pick: the study has no complete, feasible trial to pick from")
    return chosen(front, arg or None)


def _no_argument(name: str, arg: str | None) -> None:
    if arg is not None:
        raise UserError(f"--pick: {name!r} takes no argument, got {name}:{arg}")


# Rules that choose "the most accurate of an eligible set" give that set (points, argument →
# eligible points); ``export --rerank K`` retrains the K best of it at final fidelity and takes
# the best validation accuracy instead of the search's proxy accuracy.
Eligible = Callable[[Sequence[FrontPoint], "str | None"], list[FrontPoint]]
ELIGIBLE: Registry[Eligible] = Registry("pick rule by accuracy")


def _by_accuracy(p: FrontPoint) -> tuple[float, float]:
    """Most accurate first, the smaller one on a tie."""
    return -p.accuracy, p.size


def _most_accurate(points: Sequence[FrontPoint]) -> FrontPoint:
    return min(points, key=_by_accuracy)


def ranked(points: Sequence[FrontPoint], rule: str, k: int) -> list[FrontPoint]:
    """The ``k`` points that ``rule`` ranks highest, most accurate first (``points``: every
    complete, feasible trial, not only the front: a dominated student that fits the rule may be
    the better one at final fidelity). Only for rules in ``ELIGIBLE``; errors name --rerank."""
    name, _, arg = rule.partition(":")
    try:
        PICK_RULES.get(name)
    except UserError as exc:
        raise UserError(f"--pick: {exc}") from None
    try:
        eligible = ELIGIBLE.get(name)
    except UserError:
        raise UserError(
            f"--rerank: --pick {name} does not choose by accuracy; rerank works with "
            f"{', '.join(ELIGIBLE.names())}"
        ) from None
    if not points:
        raise UserError("--pick: the study has no complete, feasible trial to pick from")
    return sorted(eligible(points, arg or None), key=_by_accuracy)[:k]


@ELIGIBLE.register("max-accuracy")
def _all(points: Sequence[FrontPoint], arg: str | None) -> list[FrontPoint]:
    _no_argument("max-accuracy", arg)
    return list(points)


@ELIGIBLE.register("max-accuracy-under")
def _under(points: Sequence[FrontPoint], arg: str | None) -> list[FrontPoint]:
    limit = parse_size(arg)
    if limit is None:
        raise UserError(
            "--pick: max-accuracy-under needs a size > 0, e.g. max-accuracy-under:30k "
            f"(got {arg!r})"
        )
    fits = [p for p in points if p.size <= limit]
    if not fits:
        smallest = min(p.size for p in points)
        raise UserError(
            f"--pick: no front student has at most {limit:,.0f} (the smallest has {smallest:,.0f})"
        )
    return fits


@PICK_RULES.register("max-accuracy")
def _max_accuracy(front: Sequence[FrontPoint], arg: str | None) -> FrontPoint:
    """The most accurate student (the smaller one on a tie)."""
    return _most_accurate(_all(front, arg))


@PICK_RULES.register("max-accuracy-under")
def _max_accuracy_under(front: Sequence[FrontPoint], arg: str | None) -> FrontPoint:
    """The most accurate student of at most SIZE (the study's size objective: params, or FLOPs;
    ``30000``, ``30k`` or ``1.5M``): the best one that fits a budget."""
    return _most_accurate(_under(front, arg))


def parse_size(text: str | None) -> float | None:
    """``30000`` / ``30k`` / ``1.5M`` → a positive number, else None."""
    if not text:
        return None
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1].lower(), 1.0)
    try:
        value = float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


@PICK_RULES.register("knee")
def _knee(front: Sequence[FrontPoint], arg: str | None) -> FrontPoint:
    """The point farthest above the chord joining the front's two ends, in (log size, accuracy)
    each scaled to [0, 1]: where accuracy stops paying for size. Only the side above the chord
    counts (a point below it buys less accuracy per size than the ends do); on a front of one or
    two points, or a straight one, the more accurate end wins."""
    _no_argument("knee", arg)
    points = sorted(front, key=lambda p: p.size)
    logs = [math.log(max(p.size, 1e-12)) for p in points]
    acc = [p.accuracy for p in points]
    span_s, span_a = logs[-1] - logs[0], acc[-1] - acc[0]
    if len(points) < 3 or span_s <= 0 or span_a <= 0:
        return _most_accurate(points)

    def above_chord(i: int) -> float:
        # the chord is the diagonal of the unit square; distance = (a - s) / sqrt(2)
        return ((acc[i] - acc[0]) / span_a - (logs[i] - logs[0]) / span_s) / math.sqrt(2)

    best = max(range(len(points)), key=lambda i: (round(above_chord(i), 12), acc[i]))
    return points[best]


@PICK_RULES.register("smallest-within")
def _smallest_within(front: Sequence[FrontPoint], arg: str | None) -> FrontPoint:
    """The smallest student within PTS accuracy points (percentage points) of the best one."""
    try:
        points = float(arg) if arg is not None else math.nan
    except ValueError:
        points = math.nan
    if not math.isfinite(points) or points < 0:
        raise UserError(
            f"--pick: smallest-within needs accuracy points ≥ 0, e.g. smallest-within:0.5 "
            f"(got {arg!r})"
        )
    best = max(p.accuracy for p in front)
    close = [p for p in front if p.accuracy >= best - points / 100 - 1e-12]
    return min(close, key=lambda p: (p.size, -p.accuracy))
