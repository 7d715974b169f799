"""The objectives a study can optimise: one table read by config, sampler, executor, study,
Pareto front, dashboard and export.

Accuracy is maximised; every size objective is minimised, spans orders of magnitude (so it is
modelled, plotted and scored on a log scale) and has a hard cap in ``caps:`` and a hypervolume
reference (the cap when the study has one, else the teacher's own value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Name = Literal["accuracy", "params", "flops", "latency_ms"]


@dataclass(frozen=True)
class Objective:
    name: str
    direction: Literal["maximize", "minimize"]
    result_key: str  # key of a trial result / trial user attribute holding the value
    log_scale: bool  # model, plot and score log(value)
    label: str  # axis title
    cap_key: str | None  # field of `caps:` that bounds it, None for accuracy

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def value(self, result: Mapping) -> float:
        return result[self.result_key]


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("accuracy", "maximize", "val_accuracy", False, "validation accuracy", None),
        Objective("params", "minimize", "params", True, "parameters", "max_params"),
        Objective("flops", "minimize", "flops", True, "FLOPs per image", "max_flops"),
        Objective(
            "latency_ms", "minimize", "latency_ms", True, "latency (ms, batch 1)", "max_latency_ms"
        ),
    )
}
SIZES: tuple[str, ...] = tuple(name for name, o in OBJECTIVES.items() if not o.maximize)


def objective(name: str) -> Objective:
    return OBJECTIVES[name]


def directions(names: Sequence[str]) -> list[str]:
    return [OBJECTIVES[n].direction for n in names]


def values(names: Sequence[str], result: Mapping) -> list[float]:
    """A result's objective values in the study's order."""
    return [OBJECTIVES[n].value(result) for n in names]


def hv_references(caps: Mapping[str, float | None], teacher: Mapping[str, float]) -> dict:
    """Hypervolume reference per size objective: the cap when there is one, else the teacher's
    value (a student as large as the teacher scores 0 on that axis)."""
    return {
        name: caps.get(OBJECTIVES[name].cap_key) or teacher[OBJECTIVES[name].result_key]
        for name in SIZES
    }
