"""The NAGO hierarchical generator (Ru et al. 2020) as AutoKD (Eyono et al. 2021) searches it.

Three levels of random graphs: the top graph wires *cells*, each cell is a middle graph of
*units*, each unit is a bottom graph of operations (ReLU → conv → BN). The top-level nodes are
split in order over 3 resolution stages (channels width x 1:2:4, half the resolution per stage).
Every graph is drawn with its own seed derived from the architecture seed, so (point, seed)
always gives the same spec.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator

from autostudent.errors import TrialFailed
from autostudent.spaces._generators import StudentValues, generator
from autostudent.spaces.graphs import GRAPH_MODELS, connected_dag, derive_seed


class NagoValues(StudentValues):
    """Every value the NAGO generator reads; `{level}_p` is WS rewiring or ER edge probability."""

    top_graph: str = "ws"
    top_nodes: int = Field(6, ge=1)
    top_k: int = Field(4, ge=2)
    top_p: float = Field(0.5, ge=0.0, le=1.0)
    top_m: int = Field(2, ge=1)
    mid_graph: str = "er"
    mid_nodes: int = Field(6, ge=1)
    mid_k: int = Field(4, ge=2)
    mid_p: float = Field(0.5, ge=0.0, le=1.0)
    mid_m: int = Field(2, ge=1)
    bottom_graph: str = "ws"
    bottom_nodes: int = Field(6, ge=1)
    bottom_k: int = Field(4, ge=2)
    bottom_p: float = Field(0.5, ge=0.0, le=1.0)
    bottom_m: int = Field(2, ge=1)
    stage_ratio_0: float = Field(1.0, gt=0.0)
    stage_ratio_1: float = Field(1.0, gt=0.0)
    stage_ratio_2: float = Field(1.0, gt=0.0)

    @field_validator("top_graph", "mid_graph", "bottom_graph")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in GRAPH_MODELS:
            raise ValueError(f"unknown graph model {name!r} (known: {', '.join(GRAPH_MODELS)})")
        return name

    def stage_ratios(self) -> list[float]:
        return [self.stage_ratio_0, self.stage_ratio_1, self.stage_ratio_2]

    def graph(self, level: str, seed: int) -> dict[str, Any]:
        """One connected graph of `level` as {"nodes": n, "edges": [[u, v], ...]} (u < v)."""
        n = getattr(self, f"{level}_nodes")
        edges = connected_dag(
            getattr(self, f"{level}_graph"),
            n,
            seed,
            k=getattr(self, f"{level}_k"),
            p=getattr(self, f"{level}_p"),
            m=getattr(self, f"{level}_m"),
        )
        return {"nodes": n, "edges": edges}


def split_nodes(n: int, ratios: list[float]) -> list[int]:
    """How many of n top-level nodes each stage gets: one each, the rest by normalised ratios.

    The public NAGO code compared unnormalised ratios against node indices, so [1, 1, 1] put
    every node in stage 0 (no downsampling at all); here every stage keeps at least one node and
    the spare nodes follow the ratios (largest remainder, ties to the earlier stage).
    """
    stages = len(ratios)
    if n < stages:
        raise TrialFailed(f"{n} top-level nodes cannot fill {stages} stages")
    spare = n - stages
    shares = [spare * r / sum(ratios) for r in ratios]
    counts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(stages), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[: spare - sum(counts)]:
        counts[i] += 1
    return [1 + c for c in counts]


@generator("nago", NagoValues)
def build_nago(values: NagoValues, *, seed: int, **_: Any) -> dict[str, Any]:
    """Architecture part of a NAGO spec (SearchSpace.build_spec adds provenance and shapes)."""
    per_stage = split_nodes(values.top_nodes, values.stage_ratios())
    stages, first = [], 0
    for count, channels in zip(per_stage, values.stage_channels(), strict=True):
        stages.append({"channels": channels, "cells": list(range(first, first + count))})
        first += count
    cells = []
    for c in range(values.top_nodes):
        cell = values.graph("mid", derive_seed(seed, "mid", c))
        cell["units"] = [
            values.graph("bottom", derive_seed(seed, "bottom", c, u)) for u in range(cell["nodes"])
        ]
        cells.append(cell)
    return {
        "kind": "nago",
        "op": values.op,
        "stem_stride": values.stem_stride,
        "stages": stages,
        "top": values.graph("top", derive_seed(seed, "top")),
        "cells": cells,
    }
