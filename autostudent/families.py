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
- your own: ``package.module:factory``, a callable ``factory(width, *, in_channels,
  num_classes, input_size)`` that returns a classifier (images → logits) whose output is that of
  an ``nn.Linear``; its parameters must grow with ``width`` (1-512). That layer becomes the
  student's head and the features it reads the body's, so every KD loss can train it. The
  module must be importable (installed, or its directory on ``PYTHONPATH``): the runs take
  place in worker processes.
- ``mobilenetv2``: MobileNetV2-style inverted residuals (Sandler et al. 2018: 1×1 expand ×6,
  3×3 depthwise, linear 1×1 project, residual where shapes allow), four stages at resolution
  1, 1/2, 1/4, 1/4 with channels 16, 24, 32, 64 times a width multiplier and 1, d, d, d blocks,
  then a 1×1 conv to 4× the last stage's width; scaled in width multiplier × depth d ∈ {1, 2, 3}
  as above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from autostudent.errors import UserError
from autostudent.registry import Registry
from autostudent.sizes import count_sizes
from autostudent.student import Spec

# the width knob's range: the first stage's channels (ResNet) or the multiplier in 1/32 (MobileNet)
WIDTHS = range(1, 513)


@dataclass(frozen=True)
class Family:
    """One hand-designed family: ``shape(width, depth)`` gives the spec fields of a member;
    ``depths`` are the depths it may use (one for a fixed-depth family)."""

    description: str
    shape: Callable[[int, int], dict]
    depths: tuple[int, ...]


FAMILIES: Registry[Family] = Registry(
    "baseline family", also="or your own as package.module:factory, docs/baselines.md"
)


class NoMember(UserError):
    """The family has no member as small as the target: nothing to compare there."""


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


def _factory_shape(factory: str, width: int, _depth: int) -> dict:
    return {"kind": "factory", "factory": factory, "width": width}


def resolve_family(name: str) -> Family:
    """A registered family, or your own (``package.module:factory``, module docstring)."""
    if ":" not in name:
        return FAMILIES.get(name)
    if name.startswith("zoo:"):
        raise UserError(f"--families: {name!r}: the zoo's ResNets are the families "
                        "resnet8, resnet14, resnet20 and resnet")  # fmt: skip
    from autostudent.teacher import resolve_factory

    resolve_factory(name, field="--families")  # importable here, before any run
    return Family(f"your factory {name}, width-scaled", partial(_factory_shape, name), (1,))


def factory_name(factory: Callable) -> str:
    """A family factory given as a function (the Python API) → ``package.module:factory``, the
    name that worker processes import it by."""
    module, name = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in name or "." in name:
        raise UserError(
            f"families: {name or factory!r} is not importable by name ({module}:{name}); define "
            "it at the top level of a module on PYTHONPATH, or give 'package.module:factory'"
        )
    return f"{module}:{name}"


def family_names(text: str) -> list[str]:
    """``resnet,mobilenetv2`` → checked family names (``--families``)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--families: name at least one family")
    for name in names:
        try:
            resolve_family(name)
        except UserError as exc:
            msg = str(exc)
            raise UserError(msg if msg.startswith("--families") else f"--families: {msg}") from None
    return names


def member_spec(
    family: str, width: int, depth: int, *, in_channels: int, num_classes: int, input_size: int
) -> Spec:
    return {
        **resolve_family(family).shape(width, depth),
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
    fam = resolve_family(family)
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
        raise NoMember(
            f"--sizes: {family} has no member of at most {target:,} params "
            f"(its smallest has {smallest:,})"
        )
    return best[2]
