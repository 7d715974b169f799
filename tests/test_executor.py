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
