"""Pareto front and hypervolume of finished trials (accuracy up, size down).

Sizes span orders of magnitude, so the hypervolume is taken over (accuracy, log10(ref/size)):
a student 10x smaller than the reference scores 1 on that axis, whatever the units. The
reference size is the study's cap when it has one, else the teacher's value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


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
