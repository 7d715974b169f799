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


def test_ray_that_does_not_start_or_join_is_one_line(monkeypatch, tmp_path, cli):
    """Seen here: a search at nice 19 beside two busy training processes ended in Ray's
    traceback ("The current node timed out during startup…"), exit 1."""
    import ray

    from autostudent import executor
    from autostudent.errors import RayFailed, UserError

    def refuse(**kwargs):
        if kwargs["address"] == "local":
            raise Exception(  # what ray/_private/node.py raises
                "The current node timed out during startup. This could happen because some of "
                "the raylet failed to startup or the GCS has become overloaded.\nmore"
            )
        raise ConnectionError("Could not find any running Ray instance.\nmore")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(RayFailed, match=r"^ray: the local Ray node did not start \(The current"):
        executor.init_ray(None, executor.Resources(workers=1))
    with pytest.raises(UserError, match=r"^--ray-address: cannot join .* running Ray instance\.$"):
        executor.init_ray("127.0.0.1:1", executor.Resources(workers=1))
    # the command line: one line, exit 1 (the search reaches init_ray through run_search)
    from autostudent import driver

    def start(*args, **kwargs):
        executor.init_ray(None, executor.Resources(workers=1))

    monkeypatch.setattr(driver, "run_search", start)
    code, _out, err = cli("search", "smoke", "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert code == 1, err
    assert err.startswith("error: ray: the local Ray node did not start") and err.count("\n") == 1
