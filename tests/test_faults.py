"""Faults a long search meets, in process: a trial that diverges or runs out of memory, and a
database that goes away and comes back (or does not). The driver killed at named points, a Ray
worker killed mid-trial and a database outage during a real search are in test_search.py and
test_cluster.py; a damaged teacher-output file in test_teacher_outputs.py."""

from __future__ import annotations

import threading
import time
import uuid

import optuna
import pytest
import sqlalchemy as sa
import torch
from optuna.trial import TrialState

from autostudent import executor, storage, worker
from autostudent import study as studydb
from autostudent.candidate import CandidateFactory
from autostudent.config import StudyConfig
from autostudent.teacher import TeacherSource, load_teacher
from autostudent.teacher_outputs import teacher_outputs
from autostudent.trial import Budget, Caps
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def searcher(tmp_path, teacher_file, digits):
    """A StudySearcher over a fresh SQLite study, and what its worker function needs."""
    config = StudyConfig.model_validate(
        {
            "study": "faults",
            "teacher": {"path": str(teacher_file)},
            "space": {"name": "chain", "overrides": {"width": 4}},
            "kd": {"losses": ["kd"]},
        }
    )
    factory = CandidateFactory(config, digits.input_shape, digits.num_classes)
    study = optuna.create_study(
        study_name="faults",
        storage=storage.open_storage(f"sqlite:///{tmp_path / 'faults.db'}"),
        directions=["maximize", "minimize"],
    )
    outputs = teacher_outputs(load_teacher(TeacherSource(teacher_file)), digits, tmp_path)
    payload = {
        "data": digits,
        "outputs": outputs,
        "budget": Budget(epochs=1, batch_size=64, lr=0.05),
        "caps": Caps(),
        "device": "cpu",
        "threads": 1,
    }
    search = executor.StudySearcher(
        study, factory, n_trials=5, max_epochs=1, caps=Caps(), objectives=["accuracy", "params"]
    )
    return search, payload


def run_worker(config: dict, payload: dict, monkeypatch) -> dict:
    """The Ray trainable as a worker runs it; its last report."""
    import ray.tune

    reports: list[dict] = []
    monkeypatch.setattr(ray.tune, "report", reports.append)
    worker.train_candidate(config, payload)
    return reports[-1]


@pytest.mark.slow
def test_a_diverging_or_out_of_memory_trial_fails_with_its_reason(searcher, monkeypatch):
    search, payload = searcher
    # diverges: a learning rate no network survives
    config = search.suggest("t0")
    diverging = {**payload, "budget": Budget(epochs=1, batch_size=64, lr=1e12)}
    search.on_trial_complete("t0", run_worker(config, diverging, monkeypatch))
    # out of memory: what torch raises when a device runs out
    config = search.suggest("t1")

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with monkeypatch.context() as m:
        m.setattr(worker, "run_trial", oom)
        search.on_trial_complete("t1", run_worker(config, payload, monkeypatch))
    # the search goes on: the next proposal trains normally
    config = search.suggest("t2")
    search.on_trial_complete("t2", run_worker(config, payload, monkeypatch))

    trials = search.study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].user_attrs["failure"].startswith("loss is nan")
    assert trials[1].user_attrs["failure"].startswith("OutOfMemoryError: CUDA out of memory")
    # an unexpected error keeps its traceback (where it happened); a reasoned failure needs none
    trace = trials[1].user_attrs["traceback"]
    assert trace.startswith("Traceback") and ", in oom\n" in trace
    assert trace.rstrip().endswith(
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    )
    assert "traceback" not in trials[0].user_attrs
    assert not search.gave_up and search.failures == 0  # a success resets the run of failures


@pytest.fixture
def fresh_storage_state(monkeypatch):
    """The process-wide retry count and give-up flag, restored after the test."""
    monkeypatch.setattr(storage, "_state", {"retries": 0, "gave_up": ""})


@pytest.mark.slow
def test_a_database_that_comes_back_is_waited_for_one_that_does_not_ends_in_one_line(
    fresh_storage_state, monkeypatch, postgres_url
):
    server = sa.engine.make_url(postgres_url)
    proxy = TcpProxy((server.host, server.port)).start()
    password = f"pw-{uuid.uuid4().hex[:6]}"
    url = f"postgresql://postgres:{password}@127.0.0.1:{proxy.port}/test"
    name = f"faults-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(study_name=name, storage=storage.open_storage(url))
    try:
        # down for ~2 s: the write waits, reconnects and lands; the retries are counted
        proxy.stop()
        threading.Timer(2.0, proxy.start).start()
        started = time.monotonic()
        study.set_user_attr("written", "after the outage")
        assert time.monotonic() - started >= 1.5
        assert storage.retries() >= 1
        assert studydb.load(url, name).user_attrs["written"] == "after the outage"

        # down for good: after the patience, one line naming the database without its password
        monkeypatch.setenv("AUTOSTUDENT_STORAGE_PATIENCE", "2")
        proxy.stop()
        with pytest.raises(storage.StorageLost) as lost:
            study.set_user_attr("written", "never")
        message = str(lost.value)
        assert "\n" not in message and password not in message
        assert f"postgres:***@127.0.0.1:{proxy.port}/test stopped answering" in message
        assert storage.gave_up()
    finally:
        proxy.stop()
        optuna.delete_study(study_name=name, storage=postgres_url)


def test_a_lost_database_halts_the_searcher_and_tune_instead_of_raising(searcher, monkeypatch):
    from ray.tune.search import Searcher

    search, _payload = searcher
    search.suggest("t0")

    def gone(*args, **kwargs):
        raise storage.StorageLost("the study database x stopped answering")

    monkeypatch.setattr(search.study, "tell", gone)
    search.on_trial_complete("t0", {"failure": "loss is nan", "worker": "w:1"})  # no raise
    assert isinstance(search.halted, storage.StorageLost)
    assert executor.Halt(search).stop_all()  # Tune stops every trial
    assert search.suggest("t1") == Searcher.FINISHED
    assert len(search.study.trials) == 1  # nothing more asked of the lost database


def test_a_long_traceback_keeps_its_end_from_a_line_start():
    frames = "".join(f'  File "m{i}.py", line {i}, in f{i}\n    f{i + 1}()\n' for i in range(300))
    full = f"Traceback (most recent call last):\n{frames}ValueError: the bottom\n"
    trimmed = worker.trim_traceback(full)
    assert len(full) > 10_000 and len(trimmed) <= worker.TRACEBACK_CHARS + 2
    assert trimmed.startswith("…\n  ") and trimmed.endswith(
        "in f299\n    f300()\nValueError: the bottom\n"
    )
    assert full.endswith(trimmed[2:]) and full[-len(trimmed) + 1] == "\n"  # cut at a line start
    assert worker.trim_traceback("short\n") == "short\n"
