"""Optuna distributions <-> points of the unit cube the sampler's GP works in.

Numbers (floats, log floats, stepped floats, ints, log ints) take one column each; an int or a
stepped float owns the interval ``[value - step/2, value + step/2]`` of its column so that every
value gets the same share of the cube (as Optuna's GPSampler does), and a point is snapped back
to the grid when decoded. A categorical takes a one-hot block of ``len(choices)`` columns: with an
ARD kernel each choice gets its own length scale, and the acquisition is only ever evaluated at
real one-hot points (the optimiser keeps a block fixed, see ``_optimise``), so the
continuous relaxation never produces a proposal that is "40 % kd, 60 % mse".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


def _scale(distribution: BaseDistribution) -> tuple[float, float, bool]:
    """(lo, hi, log): the column's ends in the (log) scale the cube is linear in."""
    assert isinstance(distribution, FloatDistribution | IntDistribution)
    half = 0.5 * distribution.step if distribution.step is not None else 0.0
    low, high = distribution.low - half, distribution.high + half
    if distribution.log:
        return math.log(low), math.log(high), True
    return low, high, False


def unit_to_value(distribution: BaseDistribution, u: float) -> Any:
    """The value of ``distribution`` at coordinate ``u`` in [0, 1] (one Sobol coordinate)."""
    if isinstance(distribution, CategoricalDistribution):
        k = len(distribution.choices)
        return distribution.choices[min(int(u * k), k - 1)]
    value = float(_unit_to_number(distribution, np.array([u]))[0])
    return round(value) if isinstance(distribution, IntDistribution) else value


def _unit_to_number(distribution: BaseDistribution, u: np.ndarray) -> np.ndarray:
    assert isinstance(distribution, FloatDistribution | IntDistribution)
    lo, hi, log = _scale(distribution)
    t = lo + np.clip(u, 0.0, 1.0) * (hi - lo)
    value = np.exp(t) if log else t
    if distribution.step is not None:
        value = distribution.low + np.round((value - distribution.low) / distribution.step) * (
            distribution.step
        )
    return np.clip(value, distribution.low, distribution.high)


def _number_to_unit(distribution: BaseDistribution, value: np.ndarray) -> np.ndarray:
    lo, hi, log = _scale(distribution)
    t = np.log(value) if log else value
    return (t - lo) / (hi - lo) if hi > lo else np.full_like(t, 0.5)


class CubeEncoding:
    """A fixed search space laid out as columns of the unit cube (parameters sorted by name)."""

    def __init__(self, search_space: Mapping[str, BaseDistribution]) -> None:
        self.search_space = {name: search_space[name] for name in sorted(search_space)}
        self.columns: dict[str, slice] = {}
        start = 0
        for name, distribution in self.search_space.items():
            width = (
                len(distribution.choices)
                if isinstance(distribution, CategoricalDistribution)
                else 1
            )
            self.columns[name] = slice(start, start + width)
            start += width
        self.dim = start

    @property
    def categorical_columns(self) -> list[int]:
        """Every one-hot column: the acquisition optimiser keeps these fixed per restart."""
        return [
            column
            for name, distribution in self.search_space.items()
            if isinstance(distribution, CategoricalDistribution)
            for column in range(self.columns[name].start, self.columns[name].stop)
        ]

    def covers(self, params: Mapping[str, Any]) -> bool:
        return all(name in params for name in self.search_space)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """One trial's parameters as a point of the cube."""
        x = np.zeros(self.dim)
        for name, distribution in self.search_space.items():
            columns = self.columns[name]
            if isinstance(distribution, CategoricalDistribution):
                x[columns.start + int(distribution.to_internal_repr(params[name]))] = 1.0
            else:
                x[columns.start] = _number_to_unit(distribution, np.array([params[name]]))[0]
        return x

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """The parameters at a cube point (snapped to the grid, argmax of one-hot blocks)."""
        params: dict[str, Any] = {}
        for name, distribution in self.search_space.items():
            columns = self.columns[name]
            if isinstance(distribution, CategoricalDistribution):
                params[name] = distribution.choices[int(np.argmax(x[columns]))]
            else:
                params[name] = unit_to_value(distribution, float(x[columns.start]))
        return params

    def project(self, X: np.ndarray) -> np.ndarray:
        """Snap rows of ``X`` (n x dim) to points that decode and re-encode unchanged."""
        out = np.array(X, dtype=np.float64, copy=True)
        for name, distribution in self.search_space.items():
            columns = self.columns[name]
            if isinstance(distribution, CategoricalDistribution):
                block = np.zeros_like(out[:, columns])
                block[np.arange(len(out)), np.argmax(out[:, columns], axis=1)] = 1.0
                out[:, columns] = block
            else:
                number = _unit_to_number(distribution, out[:, columns.start])
                out[:, columns.start] = _number_to_unit(distribution, number)
        return out
