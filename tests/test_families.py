"""Hand-designed baseline families: sized to a parameter count from the spec alone, exactly."""

from __future__ import annotations

import pytest
import torch

from autostudent.families import FAMILIES, family_names, member_spec, sized_spec, spec_params
from autostudent.measure import count_flops, count_params
from autostudent.sizes import count_sizes
from autostudent.student import build_student

SHAPES = [(1, 10, 28), (3, 7, 32)]


@pytest.mark.parametrize("family", FAMILIES.names())
@pytest.mark.parametrize(("in_channels", "classes", "side"), SHAPES)
def test_counted_sizes_equal_the_built_module(family, in_channels, classes, side):
    for width, depth in ((3, 1), (12, 3)):
        depth = min(depth, max(FAMILIES.get(family).depths))
        spec = member_spec(
            family, width, depth, in_channels=in_channels, num_classes=classes, input_size=side
        )
        model = build_student(spec)
        counted = count_sizes(spec)
        assert counted.params == count_params(model)
        assert counted.flops == count_flops(model, (in_channels, side, side))
        out = model(torch.rand(2, in_channels, side, side))
        assert out.shape == (2, classes)


@pytest.mark.parametrize("family", FAMILIES.names())
@pytest.mark.parametrize("target", [4_000, 7_701, 26_910, 60_000])
def test_sized_member_is_the_largest_that_fits(family, target):
    spec = sized_spec(family, target, in_channels=1, num_classes=10, input_size=28)
    params = spec_params(spec)
    assert params <= target
    # one step wider at the chosen depth no longer fits, and no allowed depth fits closer
    depths = FAMILIES.get(family).depths
    width = spec["width"] if "width" in spec else round(spec["width_multiplier"] * 32)
    depth = spec["blocks"] if "blocks" in spec else spec["stages"][1]["blocks"]
    wider = member_spec(family, width + 1, depth, in_channels=1, num_classes=10, input_size=28)
    assert spec_params(wider) > target or spec_params(wider) == params
    for d in depths:
        for w in range(1, 200):
            n = spec_params(member_spec(family, w, d, in_channels=1, num_classes=10, input_size=28))
            if n > target:
                break
            assert n <= params
    assert spec["family"] == family


def test_resnet_family_is_the_zoo_resnet():
    """``resnet14`` sized to 25,060 params is the zoo's resnet14 of width 6 (NOTES: 25,060)."""
    spec = sized_spec("resnet14", 25_100, in_channels=1, num_classes=10, input_size=28)
    assert (spec["blocks"], spec["width"], spec_params(spec)) == (2, 6, 25_060)


def test_too_small_and_unknown_families_are_one_line_errors(user_error):
    user_error(
        lambda: sized_spec("mobilenetv2", 100, in_channels=1, num_classes=10, input_size=28),
        "mobilenetv2",
        "smallest",
    )
    user_error(lambda: family_names("resnet,vgg"), "--families", "vgg", "mobilenetv2")
    assert family_names(" resnet , mobilenetv2") == ["resnet", "mobilenetv2"]
