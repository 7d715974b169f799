"""Spec → module: shapes, stages, gradients, parameter counts, determinism."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, get_args

import pytest
import torch
from test_spaces import random_point
from torch import nn

from autostudent.errors import UserError
from autostudent.measure import count_params
from autostudent.spaces import OpType, load_space
from autostudent.student import OPS, Dag, StagedDag, Student, build_student

SMALL_NAGO = {
    "top_nodes": 4,
    "top_k": 2,
    "top_p": 0.5,
    "mid_nodes": 3,
    "mid_p": 0.6,
    "bottom_nodes": 3,
    "bottom_k": 2,
    "bottom_p": 0.5,
    "stage_ratio_0": 1.0,
    "stage_ratio_1": 1.0,
    "stage_ratio_2": 1.0,
    "width": 8,
}
CHAIN = {"depth_0": 1, "depth_1": 2, "depth_2": 1, "width": 8}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny batches: a second thread only adds synchronisation (seconds on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec_of(
    space: str,
    point: dict[str, Any],
    seed: int = 0,
    *,
    in_channels: int = 1,
    input_size: int = 28,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return load_space(space, overrides).build_spec(
        point, seed, in_channels=in_channels, num_classes=10, input_size=input_size
    )


@pytest.mark.parametrize("op", get_args(OpType))
@pytest.mark.parametrize(("space", "point"), [("nago", SMALL_NAGO), ("chain", CHAIN)])
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_output_shapes(
    space: str, point: dict[str, Any], op: str, channels: int, size: int
) -> None:
    spec = spec_of(space, point, in_channels=channels, input_size=size, overrides={"op": op})
    model = build_student(spec)
    x = torch.randn(2, channels, size, size)
    feats = model.body(x)
    assert feats.shape == (2, 4 * point["width"])
    logits = model.head(feats)
    assert logits.shape == (2, 10)
    model.eval()
    torch.testing.assert_close(model(x), model.head(model.body(x)))


def test_every_parameter_gets_a_gradient() -> None:
    """Every node of every level is wired between input and output: no dead sub-graph."""
    space = load_space("nago")
    for seed in range(3):
        point = random_point(space, seed, top_nodes=5, mid_nodes=4, bottom_nodes=4, width=8)
        model = build_student(spec_of("nago", point, seed))
        model(torch.randn(4, 1, 28, 28)).square().mean().backward()
        dead = [
            name
            for name, p in model.named_parameters()
            if p.grad is None or not p.grad.abs().sum() > 0
        ]
        assert dead == []


def test_equal_stage_ratios_downsample_twice() -> None:
    spec = spec_of("nago", {**SMALL_NAGO, "top_nodes": 3})
    model = build_student(spec)
    trunk = model.body[1]
    assert isinstance(trunk, StagedDag)
    sizes: list[tuple[int, int]] = []
    for cell in trunk.nodes:
        cell.register_forward_hook(lambda _m, _i, out: sizes.append((out.shape[1], out.shape[2])))
    model(torch.randn(1, 1, 28, 28))
    assert sizes == [(8, 28), (16, 14), (32, 7)]


def test_stem_stride_halves_every_stage() -> None:
    spec = spec_of("nago", {**SMALL_NAGO, "top_nodes": 3}, overrides={"stem_stride": 2})
    model = build_student(spec)
    sizes: list[int] = []
    for cell in model.body[1].nodes:
        cell.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[2]))
    model(torch.randn(1, 1, 28, 28))
    assert sizes == [14, 7, 4]


def test_module_follows_the_spec_graphs() -> None:
    spec = spec_of("nago", SMALL_NAGO)
    trunk = build_student(spec).body[1]
    assert len(trunk.nodes) == spec["top"]["nodes"]
    for cell, cell_spec in zip(trunk.nodes, spec["cells"], strict=True):
        assert isinstance(cell, Dag) and len(cell.nodes) == cell_spec["nodes"]
        for unit, unit_spec in zip(cell.nodes, cell_spec["units"], strict=True):
            assert len(unit.nodes) == unit_spec["nodes"]
            assert [p for v, preds in enumerate(unit.preds) for p in preds if p >= v] == []
            assert sum(map(len, unit.preds)) == len(unit_spec["edges"])


def test_build_needs_only_the_spec_and_the_torch_seed() -> None:
    spec = spec_of("nago", SMALL_NAGO, seed=9)
    round_tripped = json.loads(json.dumps(spec))
    torch.manual_seed(0)
    first = build_student(spec).state_dict()
    torch.manual_seed(0)
    second = build_student(round_tripped).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_count_params_counts_bn_and_head() -> None:
    spec = spec_of("chain", CHAIN)
    model = build_student(spec)
    # stem 1→8, then layers 8→8, 8→16 (stride 2), 16→16, 16→32 (stride 2): conv3x3 + BN each
    convs = [(1, 8), (8, 8), (8, 16), (16, 16), (16, 32)]
    expected = sum(9 * i * o + 2 * o for i, o in convs) + 32 * 10 + 10
    assert count_params(model) == expected
    conv_weights_only = sum(9 * i * o for i, o in convs)
    assert count_params(model) > conv_weights_only


def test_count_params_covers_every_layer_type_of_nago() -> None:
    model = build_student(spec_of("nago", SMALL_NAGO))
    by_type: dict[type, int] = {}
    for module in model.modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        by_type[type(module)] = by_type.get(type(module), 0) + own
    assert set(k for k, v in by_type.items() if v) == {nn.Conv2d, nn.BatchNorm2d, nn.Linear}
    assert count_params(model) == sum(by_type.values())
    assert isinstance(model, Student) and count_params(model.head) == 32 * 10 + 10


def test_params_span_an_order_of_magnitude_across_the_space() -> None:
    space = load_space("nago")
    with torch.device("meta"):
        counts = [
            count_params(build_student(spec_of("nago", random_point(space, seed), seed)))
            for seed in range(8)
        ]
    assert max(counts) >= 10 * min(counts)


def test_unknown_kind_and_op() -> None:
    spec = spec_of("chain", CHAIN)
    with pytest.raises(UserError, match="student kind 'vgg'"):
        build_student({**spec, "kind": "vgg"})
    with pytest.raises(UserError, match="op type 'conv9x9'"):
        build_student({**spec, "op": "conv9x9"})


def test_op_registry_matches_the_space_op_types() -> None:
    assert set(OPS.names()) == set(get_args(OpType))
