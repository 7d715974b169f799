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


def test_every_family_trains_channels_last_at_width_3_in_its_own_process():
    """Width 3 gives the ResNets strided 1x1 shortcuts with 3 and 6 input channels: torch
    2.13's oneDNN kernel for their weight gradient in channels-last layout corrupts the heap on
    AVX2 CPUs (zoo.StridedPointwise goes around it). A process of its own: a regression aborts
    that process, not the test session."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from autostudent.families import FAMILIES, member_spec\n"
        "from autostudent.student import build_student\n"
        "torch.manual_seed(0)\n"
        "for name in FAMILIES.names():\n"
        "    model = build_student(member_spec(name, 3, 1, in_channels=1, num_classes=10,\n"
        "                                      input_size=28))\n"
        "    for n in (13, 64) * 20:\n"
        "        model(torch.rand(n, 1, 28, 28)).logsumexp(1).mean().backward()\n"
        "print('trained')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout == "trained\n", run.stderr[-2000:]


def test_the_strided_pointwise_shortcut_is_a_strided_1x1_convolution():
    from autostudent.zoo import StridedPointwise

    conv = StridedPointwise(5, 7, 2)
    x = torch.rand(3, 5, 9, 9).contiguous(memory_format=torch.channels_last)
    expected = torch.nn.functional.conv2d(x, conv.weight, stride=2)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    assert [k for k, _ in conv.named_parameters()] == ["weight"]


# Your own family: tests/user_families.py, a module outside the package (on the tests' path).
TINY = "user_families:tiny_cnn"


def test_your_own_family_is_sized_counted_and_built_like_the_registered_ones():
    assert family_names(f"resnet8,{TINY}") == ["resnet8", TINY]
    spec = sized_spec(TINY, 1_000, in_channels=1, num_classes=10, input_size=28)
    assert spec["kind"] == "factory" and spec["family"] == TINY
    # conv 9w + BN 2w + head 10w + 10: width 47 is 997 params, width 48 would be 1,018
    assert spec["width"] == 47 and spec_params(spec) == 997
    model = build_student(spec)
    counted = count_sizes(spec)
    assert counted.params == count_params(model) == 997
    assert counted.flops == count_flops(model, (1, 28, 28))
    # the user's last Linear is the student's head; the body gives the features it reads
    x = torch.rand(3, 1, 28, 28)
    assert model.body(x).shape == (3, 47) and model(x).shape == (3, 10)
    before = torch.random.get_rng_state()
    count_sizes(spec)  # builds the module: the global RNG is left as it was
    assert torch.equal(before, torch.random.get_rng_state())


def test_your_own_family_errors_name_the_flag_and_what_is_wrong(user_error):
    shape = {"in_channels": 1, "num_classes": 10, "input_size": 28}
    user_error(lambda: family_names("nosuchmodule:net"), "--families", "PYTHONPATH")
    user_error(lambda: family_names("user_families:nope"), "--families", "user_families:nope")
    user_error(lambda: family_names("zoo:resnet8"), "--families", "resnet8")
    # a name that is not registered: the known ones, and how to bring your own
    user_error(lambda: family_names("resnet18"), "--families", "mobilenetv2, resnet, resnet14")
    user_error(lambda: family_names("resnet18"), "--families", "package.module:factory")
    user_error(
        lambda: sized_spec("user_families:softmax_out", 5_000, **shape), "--families", "nn.Linear"
    )
    broken = "user_families:broken"
    user_error(lambda: sized_spec(broken, 5_000, **shape), "--families", "width must be even")


def test_a_factory_given_as_a_function_is_named_as_workers_import_it(user_error):
    import user_families

    from autostudent.families import factory_name

    assert factory_name(user_families.tiny_cnn) == TINY
    user_error(lambda: factory_name(lambda width, **shape: None), "families", "PYTHONPATH")
