"""Hand-designed student families: the students a user would build by hand instead of searching.

A family is a network shape with a size knob (a width, and for some a depth), sized to a target
parameter count *from its spec, without training*: ``sized_spec(family, target, ...)`` returns
the largest member whose whole module (every parameter, BatchNorm and head included) has at most
``target`` parameters. Specs are ordinary student specs (``kind: resnet`` / ``kind:
mobilenetv2``) built by :func:`autostudent.student.build_student`, so a baseline is trained,
exported and drawn exactly like a searched student.

- ``resnet8`` / ``resnet14`` / ``resnet20``: the zoo's teacher-style ResNet (three stages of
  basic blocks, widths w, 2w, 4w) at a fixed depth, scaled by its width.
- ``resnet``: the same ResNet scaled in depth × width: at each size, the zoo depth whose
  width-scaled net comes closest to the size from below (ties: the deeper one).
- ``mobilenetv2``: MobileNetV2-style inverted residuals (Sandler et al. 2018: 1×1 expand ×6,
  3×3 depthwise, linear 1×1 project, residual where shapes allow), four stages at resolution
  1, 1/2, 1/4, 1/4 with channels 16, 24, 32, 64 times a width multiplier and 1, d, d, d blocks,
  then a 1×1 conv to 4× the last stage's width; scaled in width multiplier × depth d ∈ {1, 2, 3}
  as above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from autostudent.errors import UserError
from autostudent.registry import Registry
from autostudent.sizes import COUNTERS, Sizes, _bn, _conv, _conv_side, count_sizes
from autostudent.student import BUILDERS, Spec, Stem
from autostudent.zoo import ResNet

# the width knob's range: the first stage's channels (ResNet) or the multiplier in 1/32 (MobileNet)
WIDTHS = range(1, 513)


@dataclass(frozen=True)
class Family:
    """One hand-designed family: ``shape(width, depth)`` gives the spec fields of a member;
    ``depths`` are the depths it may use (one for a fixed-depth family)."""

    description: str
    shape: Callable[[int, int], dict]
    depths: tuple[int, ...]


FAMILIES: Registry[Family] = Registry("baseline family")


def _resnet_shape(width: int, depth: int) -> dict:
    return {"kind": "resnet", "blocks": depth, "width": width}


for _depth, _name in ((1, "resnet8"), (2, "resnet14"), (3, "resnet20")):
    FAMILIES.register(_name)(
        Family(
            f"the zoo's {_name} (teacher-style ResNet, {_depth} block(s) a stage), width-scaled",
            _resnet_shape,
            (_depth,),
        )
    )
FAMILIES.register("resnet")(
    Family("the zoo's ResNet, depth (8/14/20) × width", _resnet_shape, (1, 2, 3))
)

# MobileNetV2's CIFAR-style plan: (channels at multiplier 1, stride of the stage's first block)
MOBILENET_STAGES = ((16, 1), (24, 2), (32, 2), (64, 1))
EXPANSION = 6


def _mobilenet_shape(width: int, depth: int) -> dict:
    # width w is the multiplier in 1/32 (w = 32 is MobileNetV2's 1.0), channels ≥ 2
    channels = [max(2, round(c * width / 32)) for c, _ in MOBILENET_STAGES]
    return {
        "kind": "mobilenetv2",
        "stages": [
            {"channels": c, "blocks": 1 if i == 0 else depth, "stride": s}
            for i, (c, (_, s)) in enumerate(zip(channels, MOBILENET_STAGES, strict=True))
        ],
        "expansion": EXPANSION,
        "last_channels": 4 * channels[-1],
        "width_multiplier": width / 32,
    }


FAMILIES.register("mobilenetv2")(
    Family(
        "MobileNetV2-style inverted residuals, width multiplier × depth (1-3 blocks a stage)",
        _mobilenet_shape,
        (1, 2, 3),
    )
)


def family_names(text: str) -> list[str]:
    """``resnet,mobilenetv2`` → checked family names (``--families``)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--families: name at least one family")
    for name in names:
        try:
            FAMILIES.get(name)
        except UserError as exc:
            raise UserError(f"--families: {exc}") from None
    return names


def member_spec(
    family: str, width: int, depth: int, *, in_channels: int, num_classes: int, input_size: int
) -> Spec:
    return {
        **FAMILIES.get(family).shape(width, depth),
        "family": family,
        "in_channels": in_channels,
        "num_classes": num_classes,
        "input_size": input_size,
    }


def spec_params(spec: Spec) -> int:
    return count_sizes(spec).params


def sized_spec(
    family: str, target: int, *, in_channels: int, num_classes: int, input_size: int
) -> Spec:
    """The family's largest member with at most ``target`` parameters (the whole module).

    Parameters grow with the width, so each depth's widest fit is found by bisection; among the
    depths, the one closest to ``target`` wins (ties: the deeper)."""
    fam = FAMILIES.get(family)
    shape = {"in_channels": in_channels, "num_classes": num_classes, "input_size": input_size}
    best: tuple[int, int, Spec] | None = None
    for depth in fam.depths:

        def params(width: int, depth: int = depth) -> tuple[int, Spec]:
            spec = member_spec(family, width, depth, **shape)
            return spec_params(spec), spec

        lo, hi = WIDTHS.start, WIDTHS.stop - 1
        if params(lo)[0] > target:
            continue
        while lo < hi:  # the largest width whose params fit
            mid = (lo + hi + 1) // 2
            if params(mid)[0] <= target:
                lo = mid
            else:
                hi = mid - 1
        n, spec = params(lo)
        if best is None or (n, depth) >= (best[0], best[1]):
            best = (n, depth, spec)
    if best is None:
        smallest = min(spec_params(member_spec(family, 1, d, **shape)) for d in fam.depths)
        raise UserError(
            f"--sizes: {family} has no member of at most {target:,} params "
            f"(its smallest has {smallest:,})"
        )
    return best[2]


# --- the builders: spec → body, as for every student kind -------------------------------------


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


# --- the counters: exact params and FLOPs from the spec, as sizes.py does for searched kinds ----


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
