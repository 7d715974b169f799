"""The driver side of a search, without Ray: caps are constraints the sampler can learn."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from autostudent.errors import TrialFailed
from autostudent.executor import StudySearcher
from autostudent.trial import Caps, cap_constraints, check_caps

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_an_over_cap_failure_carries_every_capped_constraint():
    caps = Caps(max_params=1000, max_flops=None, max_latency_ms=2.0)
    with pytest.raises(TrialFailed, match="latency_ms 3 over the cap 2") as failure:
        check_caps(900, 5000, 3.0, caps)
    assert failure.value.constraints == {"params": -100.0, "latency_ms": 1.0}
    assert cap_constraints({"params": 900, "flops": 10}, caps) == {"params": -100.0}


def test_a_failed_trial_stores_its_sizes_and_constraints():
    # the latency path: the worker measured the student, found it over the cap, and reported
    study = optuna.create_study(directions=["maximize", "minimize"])
    searcher = StudySearcher(
        study,
        factory=None,
        n_trials=1,
        max_epochs=2,
        caps=Caps(max_params=1000, max_latency_ms=2.0),
        objectives=["accuracy", "params"],
    )
    searcher.live["t"] = study.ask()
    searcher.on_trial_complete(
        "t",
        {
            "failure": "latency_ms 3 over the cap 2",
            "constraints": {"params": -100.0, "latency_ms": 1.0},
            "sizes": {"params": 900, "flops": 5000, "latency_ms": 3.0},
        },
    )
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.constraints == {"params": -100.0, "latency_ms": 1.0}
    assert trial.user_attrs["params"] == 900 and trial.user_attrs["latency_ms"] == 3.0


def test_without_an_address_ray_starts_its_own_never_a_cluster_already_here(monkeypatch):
    """ray.init() with no address joins the cluster `ray start` last started on the machine
    (another user's, or the two-node test's while the other xdist worker runs a search)."""
    import ray

    from autostudent import executor

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(executor, "take_over_ray_printer", lambda: None)
    executor.init_ray(None, executor.Resources(workers=2))
    executor.init_ray("10.0.0.1:6379", executor.Resources(workers=2))
    assert calls[0]["address"] == "local" and calls[0]["num_cpus"] >= 2
    assert calls[1]["address"] == "10.0.0.1:6379" and "num_cpus" not in calls[1]


def test_tune_settings_hold_for_one_search_and_keep_the_users(monkeypatch):
    """Each search sets Tune's pending-trials limit to its own workers and leaves nothing
    behind: a 1-worker search followed by a 2-worker one in one process (the Python API, the
    tests) must not hand the second the first one's limit. A value the user set is kept."""
    import os

    from autostudent import executor

    monkeypatch.delenv("TUNE_MAX_PENDING_TRIALS_PG", raising=False)
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "30")
    for workers in (1, 2):
        with executor.tune_settings(executor.Resources(workers=workers)):
            assert os.environ["TUNE_MAX_PENDING_TRIALS_PG"] == str(workers)
            assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "30"
            assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1"
        assert "TUNE_MAX_PENDING_TRIALS_PG" not in os.environ
        assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ
    assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "30"
