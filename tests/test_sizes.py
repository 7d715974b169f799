"""Sizes counted from the spec equal the built module's, on random specs of every kind."""

from __future__ import annotations

import optuna
import pytest

from autostudent.measure import count_flops, count_params
from autostudent.sizes import count_sizes
from autostudent.spaces import load_space
from autostudent.student import build_student

# FlopCounterMode takes seconds on a NAGO net of ~100 ops: small nets, same code paths.
SMALL = {
    "top_nodes": {"low": 3, "high": 5},
    "mid_nodes": {"low": 1, "high": 2},
    "bottom_nodes": {"low": 1, "high": 2},
    "width": {"low": 4, "high": 16},
}


@pytest.mark.parametrize(
    ("space", "overrides", "shape"),
    [
        ("nago", SMALL, (1, 28, 28)),
        ("nago", {**SMALL, "op": "conv3x3", "stem_stride": 2}, (3, 32, 32)),
        ("chain", {}, (1, 8, 8)),
        ("chain", {"op": "sepconv3x3", "stem_stride": 2}, (3, 32, 32)),
    ],
)
def test_counted_sizes_equal_the_built_module(space, overrides, shape):
    search_space = load_space(space, overrides)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=len(shape) + shape[0]))
    for seed in range(3):
        point = study.ask(search_space.distributions()).params
        spec = search_space.build_spec(
            point, seed, in_channels=shape[0], num_classes=10, input_size=shape[1]
        )
        model = build_student(spec)
        sizes = count_sizes(spec)
        assert sizes.params == count_params(model), (point, seed)
        assert sizes.flops == count_flops(model, shape), (point, seed)
