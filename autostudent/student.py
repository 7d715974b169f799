"""Spec → student network: `build_student(spec)` dispatches on `spec["kind"]` to a builder.

Every student is `head(body(x))`: `body` maps images to pooled penultimate features (N, D) —
relational KD losses need them — and `head` is one Linear layer. Builders use no randomness
besides weight initialisation (under the caller's torch seed): the spec alone fixes the
architecture. Modules run in channels-last layout: on the 2-core CPU a NAGO student trains
1.5-1.8x faster that way (a plain conv chain 1.2-1.4x), mostly in depthwise convs and BN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import torch
from torch import nn

from autostudent.edges import predecessors, sinks
from autostudent.registry import Registry
from autostudent.zoo import ResNet

Spec = dict[str, Any]
# A builder returns the body and the width D of the features it produces.
Builder = Callable[[Spec], tuple[nn.Module, int]]
BUILDERS: Registry[Builder] = Registry("student kind")

# An op factory returns the conv layers of a ReLU → conv → BN op: (c_in, c_out, stride) → layers.
OpFactory = Callable[[int, int, int], list[nn.Module]]
OPS: Registry[OpFactory] = Registry("op type")


class Student(nn.Module):
    def __init__(self, body: nn.Module, features: int, num_classes: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_student(spec: Spec) -> Student:
    body, features = BUILDERS.get(spec["kind"])(spec)
    student = Student(body, features, spec["num_classes"])
    return student.to(memory_format=torch.channels_last)


@OPS.register("conv3x3")
def _conv3x3(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)]


@OPS.register("sepconv3x3")
def _sepconv3x3(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
    ]


def relu_conv_bn(op: str, c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), *OPS.get(op)(c_in, c_out, stride), nn.BatchNorm2d(c_out))


class Stem(nn.Sequential):
    """conv3x3 → BN; also puts the input in channels-last layout."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.contiguous(memory_format=torch.channels_last))


def pooled_body(stem: nn.Module, trunk: nn.Module) -> nn.Sequential:
    """stem → trunk → ReLU → global average pool → (N, D)."""
    return nn.Sequential(stem, trunk, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _sum(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return reduce(torch.add, tensors)


def _mean(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else _sum(tensors) * (1.0 / len(tensors))


class Dag(nn.Module):
    """Nodes wired by an oriented graph at one resolution: a node gets the sum of its
    predecessors' outputs (the Dag's input when it has none); the output is the mean of the
    nodes without successors."""

    def __init__(self, nodes: Sequence[nn.Module], edges: list[list[int]]) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(nodes)
        self.preds = predecessors(len(nodes), edges)
        self.sinks = sinks(len(nodes), edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for node, preds in zip(self.nodes, self.preds, strict=True):
            outs.append(node(_sum([outs[p] for p in preds]) if preds else x))
        return _mean([outs[i] for i in self.sinks])


class Resample(nn.Sequential):
    """Stage s → stage t > s: average-pool by 2^(t-s), then a 1x1 conv to the new width, BN
    (a DenseNet transition; pooling first is the same map at a quarter of the cost)."""

    def __init__(self, c_in: int, c_out: int, factor: int) -> None:
        super().__init__(
            nn.AvgPool2d(factor, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class StagedDag(nn.Module):
    """The top-level graph: like Dag, but its nodes sit in resolution stages. A tensor entering
    a later stage (along an edge, into a source node of that stage, or into the output) goes
    through one Resample per (producer, stage), shared by every consumer in that stage."""

    INPUT = -1  # the producer index of the stem output

    def __init__(
        self,
        nodes: Sequence[nn.Module],
        edges: list[list[int]],
        stage_of: list[int],
        channels: list[int],
    ) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(nodes)
        self.stage_of = stage_of
        self.inputs = [preds or [self.INPUT] for preds in predecessors(len(nodes), edges)]
        self.outputs = sinks(len(nodes), edges)
        self.last = len(channels) - 1
        self.resample = nn.ModuleDict()
        routes = [(p, stage_of[v]) for v, producers in enumerate(self.inputs) for p in producers]
        for producer, stage in routes + [(s, self.last) for s in self.outputs]:
            start = self._stage(producer)
            key = self._key(producer, stage)
            if stage != start and key not in self.resample:
                self.resample[key] = Resample(
                    channels[start], channels[stage], 2 ** (stage - start)
                )

    def _stage(self, producer: int) -> int:
        return 0 if producer == self.INPUT else self.stage_of[producer]

    @staticmethod
    def _key(producer: int, stage: int) -> str:
        return f"{'in' if producer < 0 else producer}_to_{stage}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: dict[int, torch.Tensor] = {self.INPUT: x}
        moved: dict[str, torch.Tensor] = {}

        def at(producer: int, stage: int) -> torch.Tensor:
            key = self._key(producer, stage)
            if key not in self.resample:
                return outs[producer]
            if key not in moved:
                moved[key] = self.resample[key](outs[producer])
            return moved[key]

        for v, node in enumerate(self.nodes):
            outs[v] = node(_sum([at(p, self.stage_of[v]) for p in self.inputs[v]]))
        return _mean([at(s, self.last) for s in self.outputs])


@BUILDERS.register("nago")
def _build_nago(spec: Spec) -> tuple[nn.Module, int]:
    op = spec["op"]
    stage_of = [0] * spec["top"]["nodes"]
    for index, stage in enumerate(spec["stages"]):
        for cell in stage["cells"]:
            stage_of[cell] = index
    channels = [stage["channels"] for stage in spec["stages"]]
    cells = []
    for cell, stage in zip(spec["cells"], stage_of, strict=True):
        width = channels[stage]
        units = [
            Dag([relu_conv_bn(op, width, width) for _ in range(unit["nodes"])], unit["edges"])
            for unit in cell["units"]
        ]
        cells.append(Dag(units, cell["edges"]))
    stem = Stem(spec["in_channels"], channels[0], spec["stem_stride"])
    trunk = StagedDag(cells, spec["top"]["edges"], stage_of, channels)
    return pooled_body(stem, trunk), channels[-1]


@BUILDERS.register("chain")
def _build_chain(spec: Spec) -> tuple[nn.Module, int]:
    op = spec["op"]
    layers: list[nn.Module] = []
    c_in = spec["stages"][0]["channels"]
    stem = Stem(spec["in_channels"], c_in, spec["stem_stride"])
    for index, stage in enumerate(spec["stages"]):
        for depth in range(stage["depth"]):
            stride = 2 if index > 0 and depth == 0 else 1
            layers.append(relu_conv_bn(op, c_in, stage["channels"], stride))
            c_in = stage["channels"]
    return pooled_body(stem, nn.Sequential(*layers)), c_in


# --- hand-designed kinds: the baselines a searched student must beat (autostudent.families) ---


@BUILDERS.register("resnet")
def _build_resnet(spec: Spec) -> tuple[nn.Module, int]:
    net = ResNet(spec["in_channels"], spec["num_classes"], spec["blocks"], spec["width"])
    return net.body, 4 * spec["width"]


class InvertedResidual(nn.Module):
    """1×1 expand → ReLU6 → 3×3 depthwise → ReLU6 → 1×1 linear projection (+ input)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        out = self.block(x)
        return x + out if self.residual else out


@BUILDERS.register("mobilenetv2")
def _build_mobilenetv2(spec: Spec) -> tuple[nn.Module, int]:
    stages = spec["stages"]
    c_in = stages[0]["channels"]
    layers: list[nn.Module] = [Stem(spec["in_channels"], c_in, 1), nn.ReLU6()]
    for index, stage in enumerate(stages):
        for b in range(stage["blocks"]):
            expansion = 1 if index == 0 else spec["expansion"]
            stride = stage["stride"] if b == 0 else 1
            layers.append(InvertedResidual(c_in, stage["channels"], stride, expansion))
            c_in = stage["channels"]
    last = spec["last_channels"]
    layers += [
        nn.Conv2d(c_in, last, 1, bias=False),
        nn.BatchNorm2d(last),
        nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers), last


# --- your own hand-designed family: ``--families package.module:factory`` (families.py) ---


@BUILDERS.register("factory")
def _build_factory(spec: Spec) -> tuple[nn.Module, int]:
    """``factory(width, in_channels=, num_classes=, input_size=)``'s classifier as a student: the
    features its last ``nn.Linear`` reads are the body's, and that layer becomes the head."""
    from autostudent.errors import UserError
    from autostudent.teacher import resolve_factory

    name, width = spec["factory"], spec["width"]
    made = f"{name}(width={width})"
    try:
        net = resolve_factory(name, field="--families")(
            width,
            in_channels=spec["in_channels"],
            num_classes=spec["num_classes"],
            input_size=spec["input_size"],
        )
    except UserError:
        raise
    except Exception as exc:  # the user's code: its own error, named
        raise UserError(f"--families: {made} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise UserError(f"--families: {made} returned {type(net).__name__}, not an nn.Module")
    linears = [(n, m) for n, m in net.named_modules() if n and isinstance(m, nn.Linear)]
    if not linears:
        raise UserError(f"--families: {made} has no nn.Linear classifier")
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, n=n: outputs.__setitem__(n, out))
        for n, m in linears
    ]
    was_training = net.training
    side = spec["input_size"]
    try:
        with torch.no_grad():
            net.eval()
            out = net(torch.zeros(2, spec["in_channels"], side, side))
    except Exception as exc:
        raise UserError(
            f"--families: {made} failed on a batch of shape (2, {spec['in_channels']}, {side}, "
            f"{side}): {type(exc).__name__}: {exc}"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    # the head: the Linear whose output is the network's output, as it is
    path = next((n for n, o in outputs.items() if o is out), None)
    if path is None or dict(linears)[path].out_features != spec["num_classes"]:
        raise UserError(
            f"--families: {made}'s output must be an nn.Linear's with {spec['num_classes']} "
            "outputs, returned as it is: the student's head is that layer"
        )
    head = dict(linears)[path]
    parent = net.get_submodule(path.rpartition(".")[0]) if "." in path else net
    setattr(parent, path.rpartition(".")[2], nn.Identity())
    return net, head.in_features
