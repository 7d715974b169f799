"""``bench scaling``'s measure of the machine itself: two idle Ray actors that train one of a
study's students alone and side by side, taking none of the CPUs Ray Tune schedules trials on."""

from __future__ import annotations

import optuna
import pytest

from autostudent.bench.scaling import CeilingProbe, _median_student, summarise


@pytest.fixture
def ray_two_cpus():
    import ray

    from autostudent.executor import Resources, init_ray

    init_ray(None, Resources(workers=2))
    yield ray
    ray.shutdown()


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
        # two workers give between one and (a little noise above) two workers' throughput
        assert 0.5 < measured["ratio"] < 2.6


def _run(workers: int, window: float, train: float, warm_up: bool = False) -> dict:
    per_trial = {"span": 9.0, "setup": 0.5, "train": train, "eval": 1.5, "orchestration": 0.3}
    return {
        "workers": workers,
        "warm_up": warm_up,
        "window_s": window,
        "wall_s": window + 2.0,
        "per_trial_s": {**per_trial, "gap": 0.01},
    }


def test_summary_takes_each_sides_median_without_the_warm_up():
    runs = [
        _run(2, 10.0, 9.0, warm_up=True),  # the warm-up: slow, and left out
        _run(1, 100.0, 4.0),
        _run(2, 50.0, 4.0),
        _run(2, 60.0, 6.0),
        _run(1, 104.0, 4.0),
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
