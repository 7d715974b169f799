"""One driver per study: the lease row, its heartbeat, refusal and take-over, on SQLite and
PostgreSQL (a search's whole kill-and-resume path is in test_search.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid

import optuna
import pytest

from autostudent import study as studydb
from autostudent.dashboard._data import study_data
from autostudent.dashboard._page import fact_pieces
from autostudent.lease import DRIVERS, Lease, LeaseHeld, LeaseLost, driver_info
from autostudent.storage import open_storage


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lease.db'}"
    else:  # the session's throwaway server (conftest.py)
        url = request.getfixturevalue("postgres_url")
    return open_storage(url)


def _set(store, study: str, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(DRIVERS.update().where(DRIVERS.c.study == study).values(**values))


def test_a_live_driver_is_refused_a_dead_one_taken_over(store):
    study = f"lease-{uuid.uuid4().hex[:8]}"
    try:
        first = Lease.acquire(store, study, interval=0.1)
        info = driver_info(store, study)
        assert info["alive"] and info["host"] == socket.gethostname()
        assert info["pid"] == os.getpid()
        with pytest.raises(LeaseHeld) as refused:
            Lease.acquire(store, study)
        message = str(refused.value)
        assert "\n" not in message
        assert f"study {study!r}" in message and f"pid {os.getpid()}" in message

        # the heartbeat thread renews the lease
        beat = info["heartbeat"]
        with first:
            deadline = time.time() + 20
            while driver_info(store, study)["heartbeat"] == beat and time.time() < deadline:
                time.sleep(0.2)
            assert driver_info(store, study)["heartbeat"] != beat
        released = driver_info(store, study)
        assert released["released"] and not released["alive"]

        # a driver on another host that beat a second ago is live; a minute ago, dead
        second = Lease.acquire(store, study)
        assert second.previous is None  # the first was released, not taken over
        _set(store, study, host="other-host", pid=4242, heartbeat=time.time() - 1)
        with pytest.raises(LeaseHeld, match=r"on other-host \(pid 4242"):
            Lease.acquire(store, study)
        _set(store, study, heartbeat=time.time() - 60)
        third = Lease.acquire(store, study)
        assert third.previous == {"host": "other-host", "pid": 4242}
        second.renew()  # the driver that was taken over learns it at its next heartbeat
        with pytest.raises(LeaseLost, match="taken over"):
            second.check()

        # a SIGKILLed driver on this host: its process is gone, no need to wait for the grace
        gone = subprocess.Popen(["true"])
        gone.wait()
        _set(store, study, pid=gone.pid, host=socket.gethostname(), heartbeat=time.time())
        assert not driver_info(store, study)["alive"]
        fourth = Lease.acquire(store, study)
        assert fourth.previous["pid"] == gone.pid
    finally:
        with store.engine.begin() as conn:
            conn.execute(DRIVERS.delete().where(DRIVERS.c.study == study))


def test_status_shows_the_driver_and_recovered_trials(store):
    study_name = f"lease-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=study_name, storage=store)
    try:
        assert studydb.summary(study)["driver"] is None  # never run by a search
        with Lease.acquire(store, study_name) as lease:
            trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
            lease.previous = {"host": "h", "pid": 7}
            assert studydb.recover_interrupted(study, lease.previous) == 1
            # the requeued trial is taken and its driver killed before the params are set:
            # recovered again, it keeps them
            requeued = study.ask()
            assert requeued.params == {}
            assert studydb.recover_interrupted(study, lease.previous) == 1
            again = study.get_trials(states=(optuna.trial.TrialState.WAITING,))[-1]
            assert again.system_attrs["fixed_params"] == trial.params
            s = studydb.summary(study)
            assert s["driver"]["alive"] and s["driver"]["pid"] == os.getpid()
            assert s["recoveries"] == 2 and s["storage_retries"] == 0
            failure = study.trials[trial.number].user_attrs["failure"]
            assert failure == "interrupted: the search driver (host h, pid 7) stopped"
            # the dashboard's header says the same
            facts = [text for text, _warn in fact_pieces(study_data(study, "db"))]
            assert f"driver running on {socket.gethostname()} (pid {os.getpid()})" in facts
            assert "2 recovered" in facts
    finally:
        optuna.delete_study(study_name=study_name, storage=store)
        with store.engine.begin() as conn:
            conn.execute(DRIVERS.delete().where(DRIVERS.c.study == study_name))
