"""``bench scaling``'s measure of the machine itself: two idle Ray actors that train one of a
study's students alone and side by side, taking none of the CPUs Ray Tune schedules trials on."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import optuna
import pytest

from autostudent.bench.scaling import CeilingProbe, _median_student, occupancy, summarise


@pytest.fixture
def ray_two_cpus():
    import ray

    from autostudent.executor import Resources, init_ray

    init_ray(None, Resources(workers=2))
    yield ray
    ray.shutdown()


@pytest.mark.slow  # the session's digits search
def test_the_ceiling_probe_trains_a_study_student_alone_and_in_pairs_on_no_ray_cpus(
    digits_study, ray_two_cpus, monkeypatch
):
    ray = ray_two_cpus
    db, name = digits_study
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    spec = _median_student(study)
    sizes = sorted(t.user_attrs["params"] for t in study.trials if "params" in t.user_attrs)
    median = sizes[len(sizes) // 2]
    assert min(sizes) < median < max(sizes)  # the probe trains a mid-size student of the study
    assert any(
        t.user_attrs.get("spec") == spec and t.user_attrs["params"] == median for t in study.trials
    )

    monkeypatch.setattr(CeilingProbe, "seconds", 0.2)
    cpus = ray.cluster_resources()["CPU"]
    probe = CeilingProbe(spec, batch_size=32)
    try:
        assert ray.available_resources().get("CPU") == cpus  # Tune's trials keep every CPU
        assert probe.steps >= 10
        alone_first = probe.measure(pair_first=False)
        pair_first = probe.measure(pair_first=True)
    finally:
        probe.close()
    assert len(alone_first["alone_s"]) == 2 and len(alone_first["pair_s"]) == 1
    assert len(pair_first["alone_s"]) == 1 and len(pair_first["pair_s"]) == 2
    for measured in (alone_first, pair_first):
        assert all(len(pair) == 2 for pair in measured["pair_s"])
        assert all(s > 0 for s in measured["alone_s"])
        # the ratio is the pair's throughput over the lone worker's, from the raw times it keeps
        # (how large it is depends on what else runs on the machine: that is bench scaling's
        # measurement, never a test's assertion)
        alone_s = sum(measured["alone_s"]) / len(measured["alone_s"])
        pair_s = [sum(times) / len(times) for times in zip(*measured["pair_s"], strict=True)]
        assert measured["ratio"] == pytest.approx(sum(alone_s / s for s in pair_s))
        assert measured["ratio"] > 0


def _run(
    workers: int, window: float, train: float, warm_up: bool = False, busy: float = 0.9
) -> dict:
    per_trial = {"span": 9.0, "setup": 0.5, "train": train, "eval": 1.5, "orchestration": 0.3}
    return {
        "workers": workers,
        "warm_up": warm_up,
        "window_s": window,
        "wall_s": window + 2.0,
        "per_trial_s": {**per_trial, "gap": 0.01},
        "occupancy": {"busy_share": busy, "worker_start_s": 2.0, "tail_s": 0.0},
    }


def test_summary_takes_each_sides_median_without_the_warm_up():
    runs = [
        _run(2, 10.0, 9.0, warm_up=True),  # the warm-up: slow, and left out
        _run(1, 100.0, 4.0, busy=0.95),
        _run(2, 50.0, 4.0, busy=0.8),
        _run(2, 60.0, 6.0, busy=0.9),
        _run(1, 104.0, 4.0, busy=0.93),
    ]
    probes = [{"ratio": 1.9}, {"ratio": 1.7}, {"ratio": 2.0}]
    summary = summarise(runs, probes)
    assert summary["one_worker_s"] == 102.0 and summary["two_workers_s"] == 55.0
    assert summary["speedup"] == pytest.approx(102.0 / 55.0)
    assert summary["wall_speedup"] == pytest.approx(104.0 / 57.0)
    assert summary["ceiling"] == 1.9
    assert summary["of_ceiling"] == pytest.approx(102.0 / 55.0 / 1.9)
    # in-worker seconds per trial: 1 worker 0.5 + 4 + 1.5 = 6; 2 workers median(6, 8) = 7
    assert summary["trial_work_ratio"] == pytest.approx(7.0 / 6.0)
    assert summary["busy_share_ratio"] == pytest.approx(0.85 / 0.94)


def _trial(number: int, worker: str, start: float, end: float, inside: float) -> SimpleNamespace:
    """A finished trial as the bench reads it: its clock, worker and seconds inside the worker."""
    at = datetime.datetime(2026, 1, 1)
    return SimpleNamespace(
        number=number,
        datetime_start=at + datetime.timedelta(seconds=start),
        datetime_complete=at + datetime.timedelta(seconds=end),
        user_attrs={
            "worker": worker,
            "setup_seconds": 0.1,
            "train_seconds": inside - 1.1,
            "eval_seconds": 1.0,
        },
    )


def test_occupancy_splits_a_runs_clock_into_trial_work_worker_start_and_tail():
    # worker a: starts 2.5 s late (its first trial 3 s outside the worker, the others 0.5 s)
    # worker b: 1.5 s late; b's last trial ends at 16 s, a's at 20 s: a 4 s tail
    trials = [
        _trial(0, "a", 0.0, 8.0, 5.0),
        _trial(1, "b", 0.1, 6.1, 4.0),
        _trial(2, "b", 6.1, 10.6, 4.0),
        _trial(3, "a", 8.0, 12.5, 4.0),
        _trial(4, "b", 10.6, 16.0, 4.9),
        _trial(5, "a", 12.5, 20.0, 7.0),
    ]
    measured = occupancy(trials)
    assert measured["busy_share"] == pytest.approx((5 + 4 + 4 + 4 + 4.9 + 7) / (2 * 20.0))
    assert measured["worker_start_s"] == pytest.approx(((3.0 - 0.5) + (2.0 - 0.5)) / 2)
    assert measured["tail_s"] == pytest.approx(4.0)
    # one worker: no tail, every second of its clock either inside a trial or not
    alone = occupancy([_trial(0, "a", 0.0, 6.0, 4.0), _trial(1, "a", 6.0, 10.5, 4.0)])
    assert alone["tail_s"] == 0.0
    assert alone["busy_share"] == pytest.approx(8.0 / 10.5)
    assert alone["worker_start_s"] == pytest.approx(2.0 - 0.5)
