"""``bench scaling``'s measure of the machine itself: two idle Ray actors that train one of a
study's students alone and side by side, taking none of the CPUs Ray Tune schedules trials on."""

from __future__ import annotations

import optuna
import pytest

from autostudent.bench.scaling import CeilingProbe, _median_student


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
