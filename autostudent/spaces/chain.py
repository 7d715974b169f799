"""A plain chain space: 3 stages of ReLU → conv → BN layers, searchable depth per stage and width.

The baseline the NAGO space is measured against: no graph, no randomness (the seed only goes into
the spec's provenance), the cheapest network per parameter on a CPU.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from autostudent.spaces._generators import StudentValues, generator


class ChainValues(StudentValues):
    depth_0: int = Field(2, ge=1, description="layers in stage 0")
    depth_1: int = Field(2, ge=1, description="layers in stage 1 (the first one has stride 2)")
    depth_2: int = Field(2, ge=1, description="layers in stage 2 (the first one has stride 2)")

    def depths(self) -> list[int]:
        return [self.depth_0, self.depth_1, self.depth_2]


@generator("chain", ChainValues)
def build_chain(values: ChainValues, **_: Any) -> dict[str, Any]:
    """Architecture part of a chain spec (SearchSpace.build_spec adds provenance and shapes)."""
    stages = [
        {"channels": channels, "depth": depth}
        for channels, depth in zip(values.stage_channels(), values.depths(), strict=True)
    ]
    return {
        "kind": "chain",
        "op": values.op,
        "stem_stride": values.stem_stride,
        "stages": stages,
    }
