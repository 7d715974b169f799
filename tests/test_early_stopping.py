"""Early stopping: MO-ASHA's promotion decisions on hand-made rungs (pure, no Ray runtime), the
config key, and one real search where MO-ASHA keeps a small student that ASHA stops."""

from __future__ import annotations

import math
import textwrap
import uuid

import numpy as np
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from autostudent.config import load_config
from autostudent.early_stopping import (
    FULL_BUDGET,
    MOASHAScheduler,
    cost_vector,
    crowding_distance,
    make_scheduler,
    milestones,
    nondominated_fronts,
    promotes,
    rung_order,
)

ACC_PARAMS = ["accuracy", "params"]


def rung(*points: tuple[float, float]) -> np.ndarray:
    """(accuracy, params) points as the scheduler's costs."""
    return np.stack([cost_vector(ACC_PARAMS, {"val_accuracy": a, "params": p}) for a, p in points])


def test_costs_follow_the_objectives_table():
    costs = cost_vector(["accuracy", "params", "latency_ms"], {"val_accuracy": 0.9, "params": 1e4})
    assert costs is None  # latency missing: a failure report is never ranked
    costs = cost_vector(ACC_PARAMS, {"val_accuracy": 0.9, "params": 1e4})
    assert costs.tolist() == [-0.9, 4.0]  # accuracy maximised, params minimised on log10


def test_fronts_and_crowding():
    #          A: big, best    B: small, worst   C: dominated by A   D: middle of the front
    costs = rung((0.90, 80_000), (0.40, 5_000), (0.85, 90_000), (0.70, 20_000))
    fronts = nondominated_fronts(costs)
    assert [sorted(f.tolist()) for f in fronts] == [[0, 1, 3], [2]]
    crowd = crowding_distance(costs[fronts[0]])
    assert np.isinf(crowd[[0, 1]]).all() and np.isfinite(crowd[2])  # extremes first
    order = rung_order(costs)
    assert order.tolist() == [0, 1, 3, 2]  # front by front; extremes, then the middle


def test_small_non_dominated_student_is_promoted_where_accuracy_alone_stops_it():
    # The case: at epoch 1 a small student's accuracy is noise-level.
    recorded = [(0.80, 60_000), (0.78, 45_000), (0.74, 70_000)]
    small = (0.38, 8_946)
    costs = rung(*recorded, small)
    assert promotes(costs, reduction_factor=2)  # non-dominated and an extreme: kept
    accuracy_only = costs[:, :1]
    assert not promotes(accuracy_only, reduction_factor=2)  # ranked last on accuracy: stopped


def test_dominated_arrival_is_stopped_even_above_the_accuracy_median():
    recorded = [(0.90, 50_000), (0.60, 5_000), (0.50, 3_000), (0.40, 2_000)]  # one front
    costs = rung(*recorded, (0.85, 60_000))  # second best accuracy, dominated by the first
    assert not promotes(costs, reduction_factor=3)  # top ceil(5/3)=2 of 5: it ranks 5th
    assert promotes(costs[:, :1], reduction_factor=3)  # accuracy alone keeps it


def test_top_share_is_one_over_eta():
    rng = np.random.default_rng(0)
    costs = rung(*[(a, p) for a, p in zip(rng.random(9), rng.integers(1e3, 1e5, 9), strict=True)])
    kept = sum(promotes(costs, 3, row) for row in range(9))
    assert kept == 3
    assert promotes(costs[:1], 3)  # the first arrival at a rung always goes on


def result(epoch: int, acc: float, params: int) -> dict:
    return {"epoch": epoch, "val_accuracy": acc, "params": params}


def test_scheduler_decides_asynchronously_per_rung():
    # the whole rung at once (no size neighbourhood): the ranking of Syne Tune's MO-ASHA
    s = MOASHAScheduler(ACC_PARAMS, max_t=4, grace_period=1, reduction_factor=2, size_band=math.inf)
    assert sorted(s.rungs) == [1, 2] == milestones(1, 4, 2)
    go, stop = TrialScheduler.CONTINUE, TrialScheduler.STOP
    assert s.decide("a", result(1, 0.8, 50_000)) == go  # first at rung 1
    assert s.decide("b", result(1, 0.7, 60_000)) == stop  # dominated by a
    assert s.decide("c", result(1, 0.3, 5_000)) == go  # smallest: non-dominated, an extreme
    assert s.decide("a", result(1, 0.8, 50_000)) == go  # already judged at rung 1
    assert s.decide("a", result(2, 0.85, 50_000)) == go  # first at rung 2
    assert s.decide("c", result(2, 0.5, 5_000)) == stop  # a front of 2, top 1 goes on: earlier
    assert s.decide("a", result(3, 0.9, 50_000)) == go  # between rungs: nothing to decide
    assert s.decide("a", result(4, 0.9, 50_000)) == stop  # full budget reached
    assert s.decide("d", {"epoch": 0, "val_accuracy": 0.0, "failure": "x"}) == go  # not ranked
    assert set(s.rungs[1]) == {"a", "b", "c"} and set(s.rungs[2]) == {"a", "c"}
    assert s.stopped == 2


def test_a_rung_ranks_an_arrival_among_students_of_its_size():
    # at epoch 1 accuracy is mostly noise: against the whole rung a larger student is dominated
    # by every smaller one that happened to score higher; against its size neighbourhood it is not
    go, stop = TrialScheduler.CONTINUE, TrialScheduler.STOP
    for band, big in ((math.inf, stop), (2.0, go)):
        s = MOASHAScheduler(ACC_PARAMS, max_t=3, grace_period=1, reduction_factor=2, size_band=band)
        assert s.decide("s1", result(1, 0.50, 3_000)) == go
        assert s.decide("s2", result(1, 0.45, 3_500)) == stop  # dominated by s1, its neighbour
        assert s.decide("s3", result(1, 0.40, 4_000)) == stop
        assert s.decide("big", result(1, 0.20, 30_000)) == big
    assert s.decide("big2", result(1, 0.10, 40_000)) == stop  # big is its neighbour now
    assert s.rungs[1].keys() == {"s1", "s2", "s3", "big", "big2"}


def test_a_full_budget_trial_is_recorded_at_its_rung_but_never_stopped():
    # a gap proposal (search.prune_gap_proposals: false): larger, slower to start, and dominated
    # at the rung by a smaller neighbour; it trains on, and later arrivals are ranked against it
    from types import SimpleNamespace

    go, stop = TrialScheduler.CONTINUE, TrialScheduler.STOP
    s = MOASHAScheduler(ACC_PARAMS, max_t=4, grace_period=2, reduction_factor=2)
    small = SimpleNamespace(trial_id="small", config={FULL_BUDGET: False})
    gap = SimpleNamespace(trial_id="gap", config={FULL_BUDGET: True})
    late = SimpleNamespace(trial_id="late", config={FULL_BUDGET: False})
    assert s.on_trial_result(None, small, result(2, 0.80, 20_000)) == go
    assert s.on_trial_result(None, gap, result(2, 0.70, 30_000)) == go  # dominated by small
    assert s.on_trial_result(None, gap, result(4, 0.85, 30_000)) == stop  # its full budget
    assert s.on_trial_result(None, late, result(2, 0.60, 35_000)) == stop
    assert set(s.rungs[2]) == {"small", "gap", "late"}
    assert (s.stopped, s.kept) == (1, 1)
    assert "kept to full budget 1" in s.debug_string()


def test_rule_by_name(tmp_path, user_error):
    def scheduler(name, epochs=3):
        return make_scheduler(
            name, objectives=ACC_PARAMS, max_epochs=epochs, grace_period=1, reduction_factor=2
        )

    assert isinstance(scheduler("moasha"), MOASHAScheduler)
    assert isinstance(scheduler("asha"), ASHAScheduler)
    assert type(scheduler("none")) is FIFOScheduler
    assert type(scheduler("moasha", epochs=1)) is FIFOScheduler  # no rung below the budget
    user_error(lambda: scheduler("hyperband"), "early-stopping rule", "moasha")

    def config(search: str):
        path = tmp_path / "s.yaml"
        path.write_text(textwrap.dedent(f"study: s\nteacher: {{path: t.pt2}}\nsearch: {search}\n"))
        return load_config(path).search

    assert config("{}").early_stopping == "moasha"  # accuracy and params
    assert config("{objectives: [accuracy]}").early_stopping == "asha"
    assert config("{early_stopping: none}").early_stopping == "none"
    user_error(lambda: config("{early_stopping: median}"), "search.early_stopping")
    assert config("{}").prune_gap_proposals is False  # the default where it applies
    assert config("{prune_gap_proposals: true}").prune_gap_proposals is True
    assert config("{sampler: tpe}").prune_gap_proposals is True  # no gap proposals to keep
    assert config("{early_stopping: asha}").prune_gap_proposals is True
    assert config("{early_stopping: none}").prune_gap_proposals is False
    off = "prune_gap_proposals: false"
    user_error(lambda: config(f"{{{off}, sampler: tpe}}"), "prune_gap_proposals")
    user_error(lambda: config(f"{{{off}, early_stopping: asha}}"), "prune_gap_proposals")


# ---------------------------------------------------------------- end to end, real Ray


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    from autostudent.executor import Resources, init_ray

    init_ray(None, Resources(workers=2))
    yield
    ray.shutdown()


KD = {"kd_loss": "kd", "kd_temperature": 4.0, "kd_alpha": 0.5}
BIG = {"depth_0": 2, "depth_1": 2, "depth_2": 2, "width": 16, **KD}
MEDIUM = {**BIG, "width": 12, "kd_temperature": 2.0}
TINY = {"depth_0": 1, "depth_1": 1, "depth_2": 1, "width": 4, **KD}


def _run_fixed_trials(tmp_path, teacher_file, rule: str):
    """Three fixed students in a fixed order (one worker): a large, a medium, then a tiny one."""
    import optuna
    import yaml

    from autostudent.driver import run_search

    name = f"es-{rule}-{uuid.uuid4().hex[:8]}"
    storage = f"sqlite:///{tmp_path / f'{name}.db'}"
    config = {
        "study": name,
        "storage": storage,
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher_file)},
        "space": {"name": "chain", "overrides": {"width": {"low": 4, "high": 16}}},
        "kd": {"losses": ["kd"]},
        "budget": {"epochs": 2, "batch_size": 64},
        "search": {"n_trials": 3, "workers": 1, "sampler": "random", "early_stopping": rule},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    study = optuna.create_study(
        study_name=name, storage=storage, directions=["maximize", "minimize"]
    )
    for params in (BIG, MEDIUM, TINY):
        study.enqueue_trial(params)
    return run_search(load_config(path), show_progress=False)


@pytest.mark.slow  # real searches
def test_moasha_keeps_the_small_student_that_asha_stops(tmp_path, teacher_file, ray_cluster):
    asha = _run_fixed_trials(tmp_path, teacher_file, "asha")
    moasha = _run_fixed_trials(tmp_path, teacher_file, "moasha")
    for study in (asha, moasha):
        assert [t.params["width"] for t in study.trials] == [16, 12, 4]
    a_tiny, m_tiny = asha.trials[2], moasha.trials[2]
    big_acc = [t.user_attrs["curve"][0] for t in asha.trials[:2]]
    # the same student, trained the same way, at the rung: least accurate, and the smallest
    assert m_tiny.user_attrs["curve"][0] == a_tiny.user_attrs["curve"][0] < min(big_acc)
    assert a_tiny.user_attrs["params"] < min(t.user_attrs["params"] for t in asha.trials[:2])
    # accuracy-only ASHA stops it at epoch 1 (PRUNED with the epochs it reached) ...
    assert a_tiny.state == TrialState.PRUNED and a_tiny.user_attrs["epochs"] == 1
    # ... MO-ASHA promotes it: it trains its full budget and joins the front
    assert m_tiny.state == TrialState.COMPLETE and m_tiny.user_attrs["epochs"] == 2
    assert m_tiny.values[1] == m_tiny.user_attrs["params"]


def test_status_names_the_students_a_rung_stopped_between_the_front_and_the_cap(tmp_path, cli):
    import json

    import optuna

    url = f"sqlite:///{tmp_path / 'cap.db'}"
    study = optuna.create_study(storage=url, study_name="cap", directions=["maximize", "minimize"])
    study.set_user_attr("objectives", ["accuracy", "params"])
    study.set_user_attr("config", {"caps": {"max_params": 8000}})

    def add(state: TrialState, accuracy: float, params: int, epochs: int) -> None:
        attrs = {"val_accuracy": accuracy, "params": params, "flops": 10 * params,
                 "latency_ms": 0.5, "epochs": epochs}  # fmt: skip
        values = [accuracy, params] if state == TrialState.COMPLETE else None
        study.add_trial(optuna.trial.create_trial(state=state, values=values, user_attrs=attrs))

    add(TrialState.COMPLETE, 0.85, 4000, 6)
    add(TrialState.COMPLETE, 0.88, 6000, 6)  # the front's largest
    add(TrialState.PRUNED, 0.70, 7000, 3)
    add(TrialState.PRUNED, 0.75, 7500, 3)
    add(TrialState.PRUNED, 0.70, 5000, 3)  # smaller than the front's largest: not listed
    add(TrialState.COMPLETE, 0.80, 7200, 6)  # dominated, but trained to the end: not listed

    code, out, err = cli("status", "--storage", url, "--study", "cap", "--json")
    assert code == 0, err
    assert json.loads(out)["stopped_under_cap"] == {
        "size": "params", "cap": 8000, "front_largest": 6000,
        "trials": [{"trial": 3, "params": 7500, "accuracy": 0.75, "epochs": 3},
                   {"trial": 2, "params": 7000, "accuracy": 0.70, "epochs": 3}],
    }  # fmt: skip
    code, out, err = cli("status", "--storage", url, "--study", "cap")
    assert code == 0, err
    assert (
        "between the front's largest (6,000 params) and the cap (8,000): 2 stopped at a rung — "
        "trials 3 (7,500), 2 (7,000); autostudent export --trial N retrains one to the end"
    ) in out

    study.set_user_attr("config", {"caps": {"max_flops": 10**6}})  # no cap on params
    code, out, _ = cli("status", "--storage", url, "--study", "cap", "--json")
    assert json.loads(out)["stopped_under_cap"] is None
    code, out, _ = cli("status", "--storage", url, "--study", "cap")
    assert "stopped at a rung" not in out
