"""A candidate student: an Optuna point (generator params + KD params) made concrete.

The point splits into the search space's generator parameters and the KD settings; the
architecture seed is derived from the study seed and the generator point, so the same point
always gives the same architecture (a requeued trial rebuilds exactly what it started).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from autostudent.config import StudyConfig
from autostudent.errors import TrialFailed
from autostudent.sizes import count_sizes
from autostudent.spaces import SearchSpace, load_space
from autostudent.trial import KDSettings

KD_PARAMS = ("kd_loss", "kd_temperature", "kd_alpha")


@dataclass(frozen=True)
class Candidate:
    number: int
    spec: dict
    kd: KDSettings
    arch_seed: int


def _range(low: float, high: float, log: bool = False) -> FloatDistribution:
    return FloatDistribution(low, high if high > low else low + 1e-12, log=log)


class CandidateFactory:
    """Knows the study's search space and shapes; turns points into candidates."""

    def __init__(
        self, config: StudyConfig, input_shape: tuple[int, int, int], num_classes: int
    ) -> None:
        self.space: SearchSpace = load_space(config.space.name, config.space.overrides)
        self.seed = config.seed
        self.input_shape = input_shape
        self.num_classes = num_classes
        kd = config.kd
        self.kd_distributions: dict[str, BaseDistribution] = {
            "kd_loss": CategoricalDistribution(list(kd.losses)),
            "kd_temperature": _range(kd.temperature.low, kd.temperature.high, kd.temperature.log),
            "kd_alpha": _range(kd.alpha.low, kd.alpha.high, kd.alpha.log),
        }

    def distributions(self) -> dict[str, BaseDistribution]:
        return {**self.space.distributions(), **self.kd_distributions}

    def arch_seed(self, point: dict) -> int:
        arch = {k: v for k, v in point.items() if k not in KD_PARAMS}
        blob = json.dumps([self.seed, arch], sort_keys=True, default=str).encode()
        return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little")

    def sizes(self, point: Mapping[str, Any]) -> dict[str, int] | None:
        """The exact params and FLOPs of the student at ``point`` (the space's single-valued
        parameters may be left out), counted from its spec without building it; None when the
        point has no architecture (the trial would fail)."""
        fixed = {
            name: d.choices[0] if isinstance(d, CategoricalDistribution) else d.low
            for name, d in self.distributions().items()
            if d.single()
        }
        try:
            sizes = count_sizes(self.make(-1, {**fixed, **point}).spec)
        except TrialFailed:
            return None
        return {"params": sizes.params, "flops": sizes.flops}

    def make(self, number: int, point: dict) -> Candidate:
        arch = {k: v for k, v in point.items() if k not in KD_PARAMS}
        seed = self.arch_seed(point)
        spec = self.space.build_spec(
            arch,
            seed,
            in_channels=self.input_shape[0],
            num_classes=self.num_classes,
            input_size=self.input_shape[1],
        )
        kd = KDSettings(point["kd_loss"], float(point["kd_temperature"]), float(point["kd_alpha"]))
        return Candidate(number, spec, kd, seed)
