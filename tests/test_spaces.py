"""Search spaces: random graphs, the NAGO and chain generators, YAML loading and overrides."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from autostudent import builtin
from autostudent.errors import TrialFailed, UserError
from autostudent.spaces import SearchSpace, available_spaces, load_space
from autostudent.spaces.graphs import (
    GRAPH_MODELS,
    connected_dag,
    derive_seed,
    effective_ws_k,
    is_connected,
    orient,
    random_graph,
)
from autostudent.spaces.nago import split_nodes

SHAPES = {"in_channels": 1, "num_classes": 10, "input_size": 28}


def random_point(space: SearchSpace, seed: int, **chosen: Any) -> dict[str, Any]:
    """A uniformly drawn point of the space, with the `chosen` values put in."""
    rng = random.Random(seed)
    point: dict[str, Any] = {}
    for name, dist in space.distributions().items():
        if isinstance(dist, IntDistribution):
            point[name] = rng.randint(dist.low, dist.high)
        elif isinstance(dist, FloatDistribution):
            point[name] = rng.uniform(dist.low, dist.high)
        else:
            assert isinstance(dist, CategoricalDistribution)
            point[name] = rng.choice(dist.choices)
    return {**point, **chosen}


def one_line_user_error(excinfo: pytest.ExceptionInfo[UserError], *parts: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# --- graphs -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["ws", "er", "ba"])
@pytest.mark.parametrize("n", [3, 6, 10])
def test_graphs_are_connected_dags_oriented_low_to_high(model: str, n: int) -> None:
    for seed in range(5):
        edges = connected_dag(model, n, seed, k=4, p=0.6, m=2)
        assert all(u < v for u, v in edges)
        dag = nx.DiGraph(edges)
        dag.add_nodes_from(range(n))
        assert nx.is_directed_acyclic_graph(dag)
        assert nx.is_weakly_connected(dag)
        assert edges == connected_dag(model, n, seed, k=4, p=0.6, m=2)


def test_graph_models_registry() -> None:
    assert set(GRAPH_MODELS.names()) == {"ws", "er", "ba"}
    with pytest.raises(UserError, match="graph model"):
        random_graph("kleinberg", 5, 0)


def test_different_seeds_give_different_graphs() -> None:
    draws = {json.dumps(connected_dag("ws", 10, seed, k=4, p=0.5)) for seed in range(10)}
    assert len(draws) > 5


def test_disconnected_draw_is_retried_with_derived_seeds() -> None:
    n, p = 6, 0.35
    seed = next(s for s in range(1000) if not is_connected(random_graph("er", n, s, p=p)))
    edges = connected_dag("er", n, seed, p=p)
    # The answer is the first connected draw among the seed and the seeds derived from it.
    retries = (derive_seed(seed, "retry", attempt) for attempt in range(1, 100))
    first = next(g for g in (random_graph("er", n, s, p=p) for s in retries) if is_connected(g))
    assert edges == orient(first)
    assert edges != orient(random_graph("er", n, seed, p=p))


def test_hopeless_graph_fails_the_trial_with_a_reason() -> None:
    with pytest.raises(TrialFailed, match=r"er graph with n=8 .*disconnected after 5 draws"):
        connected_dag("er", 8, seed=3, p=0.01, tries=5)


def test_ws_k_is_clamped_below_n_and_even() -> None:
    assert effective_ws_k(3, 5) == 2
    assert effective_ws_k(5, 5) == 4
    assert effective_ws_k(10, 5) == 4
    assert effective_ws_k(10, 3) == 2
    # K ≥ n would make networkx return a complete graph (or raise); clamped it stays a ring.
    graph = random_graph("ws", 4, seed=0, k=5, p=0.0)
    assert sorted(d for _, d in graph.degree()) == [2, 2, 2, 2]


def test_derived_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(7, "mid", 0) == derive_seed(7, "mid", 0)
    assert len({derive_seed(7, "bottom", c, u) for c in range(10) for u in range(10)}) == 100
    assert 0 <= derive_seed(2**40, "x") < 2**31


# --- NAGO ---------------------------------------------------------------------------------


def test_split_nodes_gives_every_stage_a_node() -> None:
    for n in range(3, 11):
        counts = split_nodes(n, [1.0, 1.0, 1.0])
        assert sum(counts) == n and min(counts) >= 1 and max(counts) - min(counts) <= 1
    assert split_nodes(10, [1.0, 0.1, 0.1]) == [7, 2, 1]  # 1 each + 7 * (0.83, 0.08, 0.08)
    assert split_nodes(10, [0.1, 0.1, 1.0]) == [2, 1, 7]
    with pytest.raises(TrialFailed, match="3 stages"):
        split_nodes(2, [1.0, 1.0, 1.0])


def test_nago_spec_is_deterministic_and_json() -> None:
    space = load_space("nago")
    point = random_point(space, 0)
    spec = space.build_spec(point, 123, **SHAPES)
    assert spec == space.build_spec(dict(point), 123, **SHAPES)
    assert json.loads(json.dumps(spec)) == spec
    assert spec["kind"] == "nago" and spec["seed"] == 123 and spec["point"] == point
    others = [json.dumps(space.build_spec(point, seed, **SHAPES)) for seed in range(5)]
    assert len(set(others)) == 5


def test_nago_spec_structure_follows_the_point() -> None:
    space = load_space("nago")
    point = random_point(space, 1, top_nodes=5, mid_nodes=4, bottom_nodes=3, width=12)
    spec = space.build_spec(point, 0, **SHAPES)
    assert spec["top"]["nodes"] == 5 and len(spec["cells"]) == 5
    assert all(cell["nodes"] == 4 and len(cell["units"]) == 4 for cell in spec["cells"])
    assert all(unit["nodes"] == 3 for cell in spec["cells"] for unit in cell["units"])
    assert [stage["channels"] for stage in spec["stages"]] == [12, 24, 48]
    assert sorted(c for stage in spec["stages"] for c in stage["cells"]) == list(range(5))


def test_equal_stage_ratios_fill_all_three_stages() -> None:
    space = load_space("nago")
    ratios = {f"stage_ratio_{i}": 1.0 for i in range(3)}
    point = random_point(space, 2, top_nodes=3, **ratios)
    spec = space.build_spec(point, 0, **SHAPES)
    assert [stage["cells"] for stage in spec["stages"]] == [[0], [1], [2]]


def test_hopeless_nago_graph_is_a_failed_trial() -> None:
    # mid_p 0.001 lies outside nago's range (an override may not fix it there): a space of its own
    data = load_space("nago", {"mid_nodes": 10}).model_dump()
    del data["params"]["mid_p"]
    data["fixed"]["mid_p"] = 0.001
    space = SearchSpace.model_validate(data)
    point = random_point(space, 3)
    with pytest.raises(TrialFailed, match="disconnected"):
        space.build_spec(point, 0, **SHAPES)


def test_nago_other_graph_models_per_level() -> None:
    space = load_space(
        "nago", {"top_graph": "ba", "mid_graph": {"type": "categorical", "choices": ["ws", "ba"]}}
    )
    point = random_point(space, 4, mid_graph="ba")
    spec = space.build_spec(point, 0, **SHAPES)
    assert spec["values"]["top_graph"] == "ba" and spec["values"]["mid_graph"] == "ba"


# --- chain --------------------------------------------------------------------------------


def test_chain_spec() -> None:
    space = load_space("chain")
    point = {"depth_0": 1, "depth_1": 2, "depth_2": 3, "width": 10}
    spec = space.build_spec(point, 5, **SHAPES)
    assert spec == space.build_spec(point, 5, **SHAPES)
    assert json.loads(json.dumps(spec)) == spec
    assert spec["stages"] == [
        {"channels": 10, "depth": 1},
        {"channels": 20, "depth": 2},
        {"channels": 40, "depth": 3},
    ]


# --- catalogue: loading, distributions, overrides -----------------------------------------


def test_builtin_spaces_load_by_name_and_path() -> None:
    assert {"nago", "chain"} <= set(available_spaces())
    by_name = load_space("nago")
    by_path = load_space(str(builtin.folder("search_spaces") / "nago.yaml"))
    assert by_name == by_path
    assert by_name.params["top_nodes"].low == 3 and by_name.params["top_nodes"].high == 10
    dists = by_name.distributions()
    assert dists["width"] == IntDistribution(4, 64, log=True)
    assert isinstance(dists["top_p"], FloatDistribution)
    assert "op" not in dists and by_name.fixed["op"] in ("conv3x3", "sepconv3x3")


def test_unknown_space_name() -> None:
    with pytest.raises(UserError) as info:
        load_space("resnet9000")
    one_line_user_error(info, "resnet9000", "nago")


def test_overrides_narrow_a_range_and_fix_a_value() -> None:
    space = load_space("nago", {"top_nodes": {"low": 3, "high": 6}, "width": 16})
    assert space.distributions()["top_nodes"] == IntDistribution(3, 6)
    assert "width" not in space.distributions() and space.fixed["width"] == 16
    point = random_point(space, 5)
    spec = space.build_spec(point, 0, **SHAPES)
    assert spec["stages"][0]["channels"] == 16 and spec["top"]["nodes"] <= 6
    # The original is untouched (spaces are immutable values).
    assert "width" in load_space("nago").distributions()


def test_override_can_change_a_fixed_op() -> None:
    space = load_space("chain", {"op": "sepconv3x3"})
    spec = space.build_spec({"depth_0": 1, "depth_1": 1, "depth_2": 1, "width": 8}, 0, **SHAPES)
    assert spec["op"] == "sepconv3x3"


@pytest.mark.parametrize(
    ("overrides", "parts"),
    [
        ({"top_nodez": 4}, ["top_nodez", "not a param or fixed value"]),
        ({"top_nodes": {"low": 7, "high": 4}}, ["top_nodes", "low 7 > high 4"]),
        ({"top_nodes": {"low": 0}}, ["top_nodes", "[0, 10] widens", "[3, 10]"]),
        ({"top_nodes": {"low": 1, "high": 99}}, ["top_nodes", "widens the space's range"]),
        ({"width": 999}, ["width", "999", "outside the space's range [4, 64]"]),
        ({"top_p": {"type": "int", "low": 0, "high": 1}}, ["top_p", "type (float to int)"]),
        ({"width": {"low": 0, "high": 8, "log": True}}, ["width", "log scale"]),
        ({"op": "conv7x7"}, ["op", "conv7x7"]),
        ({"top_graph": "smallworld"}, ["top_graph", "smallworld"]),
        ({"top_p": {"kind": "float"}}, ["top_p", "kind"]),
        ({"op": {"choices": ["conv3x3"]}}, ["op", "fixed value", "type"]),
    ],
)
def test_bad_overrides_name_the_field(overrides: dict[str, Any], parts: list[str]) -> None:
    with pytest.raises(UserError) as info:
        load_space("nago", overrides)
    one_line_user_error(info, *parts)


def test_overrides_keep_categorical_choices_inside_the_space(tmp_path: Path) -> None:
    op = "  op: {type: categorical, choices: [conv3x3, sepconv3x3]}\nfixed:"
    path = write(tmp_path, GOOD.replace("fixed:", op))
    narrowed = load_space(str(path), {"op": {"choices": ["sepconv3x3"]}})
    assert narrowed.params["op"].choices == ["sepconv3x3"]
    assert load_space(str(path), {"op": "conv3x3"}).fixed["op"] == "conv3x3"
    for overrides, part in (
        ({"op": {"choices": ["sepconv3x3", "conv5x5"]}}, "['conv5x5'] are not among"),
        ({"op": "conv5x5"}, "'conv5x5' is not among the choices"),
    ):
        with pytest.raises(UserError) as info:
            load_space(str(path), overrides)
        one_line_user_error(info, "op", part)


def test_point_must_cover_the_params() -> None:
    space = load_space("chain")
    with pytest.raises(UserError) as info:
        space.build_spec({"depth_0": 1}, 0, **SHAPES)
    one_line_user_error(info, "depth_1", "width")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


GOOD = """
name: mine
generator: chain
params:
  width: {type: int, low: 4, high: 32, log: true}
fixed:
  depth_0: 1
"""


def test_space_from_a_yaml_file(tmp_path: Path) -> None:
    space = load_space(str(write(tmp_path, GOOD)))
    assert space.name == "mine" and list(space.distributions()) == ["width"]
    spec = space.build_spec({"width": 4}, 0, **SHAPES)
    assert [stage["depth"] for stage in spec["stages"]] == [1, 2, 2]  # generator defaults


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("name: x\ngenerator: chain\nparams: {width: {type: int, low: 4\n", ["invalid YAML"]),
        ("- just\n- a list\n", ["expected a mapping"]),
        (GOOD.replace("generator: chain", "generator: darts"), ["generator", "darts"]),
        (GOOD.replace("low: 4", "low: 40"), ["params.width", "low 40 > high 32"]),
        (GOOD.replace("depth_0: 1", "depth_9: 1"), ["fixed.depth_9", "not a value"]),
        (GOOD.replace("depth_0: 1", "depth_0: 0"), ["fixed.depth_0"]),
        (GOOD.replace("type: int", "type: integer"), ["params.width"]),
        (GOOD.replace("depth_0: 1", "width: 8"), ["width", "both in params and in fixed"]),
        (GOOD.replace("name: mine\n", ""), ["name", "Field required"]),
    ],
)
def test_bad_yaml_names_the_file_and_field(tmp_path: Path, text: str, parts: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_space(str(path))
    one_line_user_error(info, str(path), *parts)


def test_missing_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        load_space(str(tmp_path / "nope.yaml"))
    one_line_user_error(info, "nope.yaml", "no such")
