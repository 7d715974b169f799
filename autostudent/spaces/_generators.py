"""The generators: how a space's values become an architecture, registered by name.

`StudentValues` holds the values every generator reads; a generator's own values model extends
it and decides which names a space file may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from autostudent.registry import Registry

# Operation of a graph node / chain layer: ReLU → conv → BN. autostudent.student registers one
# module factory per name; a test keeps the two lists equal.
OpType = Literal["conv3x3", "sepconv3x3"]


class StudentValues(BaseModel):
    """Values every generator reads; a generator's own values model extends this one."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    width: int = Field(16, ge=1, description="channels of stage 0 (and of the stem)")
    op: OpType = "sepconv3x3"
    channel_ratios: list[int] = Field(
        [1, 2, 4], min_length=3, max_length=3, description="channels of the 3 stages ÷ width"
    )
    stem_stride: int = Field(1, ge=1, le=4)

    @field_validator("channel_ratios")
    @classmethod
    def _positive(cls, ratios: list[int]) -> list[int]:
        if any(r < 1 for r in ratios):
            raise ValueError(f"channel ratios must be ≥ 1, got {ratios}")
        return ratios

    def stage_channels(self) -> list[int]:
        return [self.width * r for r in self.channel_ratios]


BuildFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Generator:
    """How a space's values become an architecture: `build(values, seed=…)` → architecture dict.

    `values` is the pydantic model of every value the generator reads (with defaults): it decides
    which names a YAML file may use and checks their types and bounds when the file is loaded.
    """

    values: type[StudentValues]
    build: BuildFn


GENERATORS: Registry[Generator] = Registry("search-space generator")


def generator(name: str, values: type[StudentValues]) -> Callable[[BuildFn], BuildFn]:
    """Register `build(values, *, seed, in_channels, num_classes, input_size) -> dict` as `name`."""

    def add(build: BuildFn) -> BuildFn:
        GENERATORS.register(name)(Generator(values, build))
        return build

    return add
