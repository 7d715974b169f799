"""A space's searchable params: numeric ranges and categorical choices, each an Optuna
distribution."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator


class RangeParam(BaseModel):
    """A numeric range {low, high, log}; also the KD ranges of a study config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check_range(self) -> RangeParam:
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low {self.low}")
        return self

    def extremes(self) -> list[Any]:
        return [self.low, self.high]


class FloatParam(RangeParam):
    type: Literal["float"]

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log)


class IntParam(RangeParam):
    type: Literal["int"]
    low: int
    high: int

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, log=self.log)


class CategoricalParam(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["categorical"]
    choices: list[bool | int | float | str | None] = Field(min_length=1)

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.choices)

    def extremes(self) -> list[Any]:
        return list(self.choices)


AnyParam = FloatParam | IntParam | CategoricalParam
ParamSpec = Annotated[AnyParam, Field(discriminator="type")]
PARAM_SPEC: TypeAdapter[AnyParam] = TypeAdapter(ParamSpec)
