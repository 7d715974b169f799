"""Parameters and FLOPs of a student, counted from its spec alone (no module is built).

A student's size is a pure function of its spec, i.e. of (generator point, architecture seed):
the sampler uses these counts to reject over-cap points before any trial is spent on them, and
the executor to check the hard caps in the driver. They equal ``measure.count_params`` and
``measure.count_flops`` (PyTorch's FlopCounterMode: convolutions and the head's matmul, a
multiply-add = 2; BN, ReLU, pooling and additions count 0) on the built module —
``tests/test_sizes.py`` checks that on random specs of every kind. Counting takes ~0.1 ms where
building the module and tracing its FLOPs takes ~100 ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autostudent.edges import predecessors, sinks
from autostudent.registry import Registry

Spec = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    params: int
    flops: int  # per image, one forward pass

    def __add__(self, other: Sizes) -> Sizes:
        return Sizes(self.params + other.params, self.flops + other.flops)


ZERO = Sizes(0, 0)
# A counter returns the body's sizes and the width D of the features it produces.
Counter = Callable[[Spec], tuple[Sizes, int]]
COUNTERS: Registry[Counter] = Registry("student kind")


def count_sizes(spec: Spec) -> Sizes:
    """Exact params and FLOPs of ``build_student(spec)`` (body + linear head)."""
    body, features = COUNTERS.get(spec["kind"])(spec)
    classes = spec["num_classes"]
    return body + Sizes(features * classes + classes, 2 * features * classes)


def _conv(c_in: int, c_out: int, k: int, side: int, groups: int = 1) -> Sizes:
    """A bias-free k x k conv whose output is side x side."""
    weights = c_out * (c_in // groups) * k * k
    return Sizes(weights, 2 * weights * side * side)


def _bn(channels: int) -> Sizes:
    return Sizes(2 * channels, 0)


def _conv_side(side: int, stride: int) -> int:
    """Output side of a 3x3 conv with padding 1."""
    return (side - 1) // stride + 1


def _op(op: str, c_in: int, c_out: int, side: int) -> Sizes:
    """ReLU -> op -> BN (``student.relu_conv_bn``); ``side`` is the output side."""
    if op == "conv3x3":
        return _conv(c_in, c_out, 3, side) + _bn(c_out)
    if op == "sepconv3x3":
        return _conv(c_in, c_in, 3, side, groups=c_in) + _conv(c_in, c_out, 1, side) + _bn(c_out)
    raise ValueError(f"sizes: no counter for op {op!r}")


def _stem(spec: Spec, channels: int) -> tuple[Sizes, int]:
    side = _conv_side(spec["input_size"], spec["stem_stride"])
    return _conv(spec["in_channels"], channels, 3, side) + _bn(channels), side


@COUNTERS.register("chain")
def _chain(spec: Spec) -> tuple[Sizes, int]:
    c_in = spec["stages"][0]["channels"]
    total, side = _stem(spec, c_in)
    for index, stage in enumerate(spec["stages"]):
        for depth in range(stage["depth"]):
            stride = 2 if index > 0 and depth == 0 else 1
            side = _conv_side(side, stride)
            total += _op(spec["op"], c_in, stage["channels"], side)
            c_in = stage["channels"]
    return total, c_in


@COUNTERS.register("nago")
def _nago(spec: Spec) -> tuple[Sizes, int]:
    """Mirrors ``student._build_nago`` and ``StagedDag``'s resampling routes."""
    channels = [stage["channels"] for stage in spec["stages"]]
    stage_of = [0] * spec["top"]["nodes"]
    for index, stage in enumerate(spec["stages"]):
        for cell in stage["cells"]:
            stage_of[cell] = index
    total, side0 = _stem(spec, channels[0])
    sides = [math.ceil(side0 / 2**s) for s in range(len(channels))]  # AvgPool, ceil_mode
    for cell, stage in zip(spec["cells"], stage_of, strict=True):
        op = _op(spec["op"], channels[stage], channels[stage], sides[stage])
        nodes = sum(unit["nodes"] for unit in cell["units"])
        total += Sizes(op.params * nodes, op.flops * nodes)
    # Resample (pool -> 1x1 conv -> BN), one per (producer, later stage) that is used.
    n = spec["top"]["nodes"]
    inputs = [preds or [-1] for preds in predecessors(n, spec["top"]["edges"])]
    last = len(channels) - 1
    routes = [(p, stage_of[v]) for v, producers in enumerate(inputs) for p in producers]
    routes += [(s, last) for s in sinks(n, spec["top"]["edges"])]
    for producer, stage in set(routes):
        start = 0 if producer < 0 else stage_of[producer]
        if stage != start:
            total += _conv(channels[start], channels[stage], 1, sides[stage]) + _bn(channels[stage])
    return total, channels[-1]


# --- hand-designed kinds (autostudent.families) -------------------------------------------


@COUNTERS.register("resnet")
def _count_resnet(spec: Spec) -> tuple[Sizes, int]:
    width, side = spec["width"], spec["input_size"]
    total = _conv(spec["in_channels"], width, 3, side) + _bn(width)
    c_in = width
    for stage in range(3):
        c_out = width * 2**stage
        for b in range(spec["blocks"]):
            stride = 2 if stage > 0 and b == 0 else 1
            side = _conv_side(side, stride)
            total += _conv(c_in, c_out, 3, side) + _bn(c_out) + _conv(c_out, c_out, 3, side)
            total += _bn(c_out)
            if stride != 1 or c_in != c_out:
                total += _conv(c_in, c_out, 1, side) + _bn(c_out)
            c_in = c_out
    return total, c_in


@COUNTERS.register("mobilenetv2")
def _count_mobilenetv2(spec: Spec) -> tuple[Sizes, int]:
    stages, side = spec["stages"], spec["input_size"]
    c_in = stages[0]["channels"]
    total = _conv(spec["in_channels"], c_in, 3, side) + _bn(c_in)
    for index, stage in enumerate(stages):
        for b in range(stage["blocks"]):
            expansion = 1 if index == 0 else spec["expansion"]
            hidden = c_in * expansion
            if expansion != 1:
                total += _conv(c_in, hidden, 1, side) + _bn(hidden)
            side = _conv_side(side, stage["stride"] if b == 0 else 1)
            total += _conv(hidden, hidden, 3, side, groups=hidden) + _bn(hidden)
            total += _conv(hidden, stage["channels"], 1, side) + _bn(stage["channels"])
            c_in = stage["channels"]
    last = spec["last_channels"]
    return total + _conv(c_in, last, 1, side) + _bn(last), last


@COUNTERS.register("factory")
def _factory(spec: Spec) -> tuple[Sizes, int]:
    """Your own family's member (``student._build_factory``): counted on the built module, the
    one kind whose spec does not say its layers; the global torch RNG is left as it was."""
    import torch

    from autostudent.measure import count_flops, count_params
    from autostudent.student import BUILDERS

    with torch.random.fork_rng(devices=[]):
        body, features = BUILDERS.get("factory")(spec)
    side = spec["input_size"]
    return Sizes(count_params(body), count_flops(body, (spec["in_channels"], side, side))), features
