"""``bench hypervolume``: the summary arithmetic on hand-made runs, and a tiny real bench (2
samplers × 1 seed × 3 trials) that writes its raw files and resumes without rerunning."""

from __future__ import annotations

import json

import pytest

from autostudent import study as studydb
from autostudent.bench.hypervolume import bench_hypervolume, hv_at_time, summarise


def run(seed: int, hv: list[float], wall: list[float]) -> dict:
    return {"seed": seed, "hv_per_trial": hv, "wall_s_per_trial": wall, "fallbacks": 0}


def test_summary_per_trial_and_per_wall_clock():
    hv = [0.1 * k for k in range(1, 41)]
    runs = {
        "slow": [run(s, hv, [10.0 * k for k in range(1, 41)]) for s in range(3)],
        "fast": [run(0, [v / 2 for v in hv], [5.0 * k for k in range(1, 41)])],
    }
    out = summarise(runs, 40)
    assert out["equal_wall_s"] == 200.0  # the fastest sampler's median wall clock to 40
    slow, fast = out["samplers"]["slow"], out["samplers"]["fast"]
    assert slow["hv_median"] == pytest.approx(4.0) and fast["hv_median"] == pytest.approx(2.0)
    assert slow["hv_at"] == pytest.approx({"10": 1.0, "20": 2.0, "40": 4.0})
    assert slow["wall_s_median"] == 400.0 and slow["hv_per_s"] == pytest.approx(0.01)
    assert slow["hv_at_equal_wall"] == pytest.approx(2.0)  # 20 trials finished by 200 s
    assert fast["hv_at_equal_wall"] == pytest.approx(2.0)
    assert hv_at_time(runs["slow"][0], 5.0) == 0.0  # nothing finished yet
    assert slow["stopped"] == 0


def test_a_stopped_run_counts_at_its_last_value_and_is_counted():
    # e.g. a sampler that kept proposing students over the cap: the product stopped the search
    short = {**run(1, [0.2, 0.5], [3.0, 6.0]), "stopped": "search stopped: 40 trials in a row"}
    out = summarise({"gp": [run(0, [0.1 * k for k in range(1, 41)], list(range(40))), short]}, 40)
    gp = out["samplers"]["gp"]
    assert gp["stopped"] == 1
    assert gp["hv_at"]["20"] == pytest.approx((2.0 + 0.5) / 2)  # the short run stays at 0.5
    assert gp["hv_median"] == pytest.approx((4.0 + 0.5) / 2)


def test_a_resumed_bench_does_not_mix_two_arms_of_ours(tmp_path):
    from autostudent.errors import UserError

    (tmp_path / "runs").mkdir()
    kept = tmp_path / "runs" / "botorch-seed0.json"
    kept.write_text(json.dumps({"sampler": "botorch", "trials": 40}))  # before the field: defaults
    then = {"rung_average": None}  # its rungs read the model, as all did then
    with pytest.raises(UserError, match=r"botorch-seed0\.json ran ours with other coverage rules"):
        bench_hypervolume(tmp_path, samplers=["botorch"], coverage={"gap_share": 0}, budget=then)
    # the stored run predates the field: it ran with the default of then, pruning
    with pytest.raises(UserError, match=r"prune_gap_proposals true; give --prune-gap-proposals"):
        bench_hypervolume(tmp_path, samplers=["botorch"], budget=then)  # today's default keeps them
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["botorch-seed0.json", "runs"]


def test_a_resumed_bench_does_not_mix_two_rung_readings(tmp_path):
    from autostudent.errors import UserError

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "tpe-seed0.json").write_text(json.dumps({"sampler": "tpe", "trials": 40}))
    # the stored run predates the field: its rungs read the model itself, not today's default
    with pytest.raises(UserError, match=r"tpe-seed0\.json ran with rung_average none; give "):
        bench_hypervolume(tmp_path, samplers=["tpe"])
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["runs", "tpe-seed0.json"]


def test_a_budget_arm_reaches_every_samplers_trials(tmp_path, teacher_file):
    from autostudent.bench.hypervolume import task_config
    from autostudent.config import BudgetConfig

    for sampler in ("botorch", "gp"):
        config = task_config(
            tmp_path, teacher_file, sampler, 0, 40, "fashion-mnist-2k-flops",
            budget={"rung_average": 0.9},
        )  # fmt: skip
        assert config.budget.rung_average == 0.9
        assert config.budget.epochs == 4 and config.budget.train_subset == 2000  # the task's own
    plain = task_config(tmp_path, teacher_file, "gp", 0, 40, "fashion-mnist-2k-flops")
    assert plain.budget.rung_average == BudgetConfig().rung_average  # the product's default


def test_ours_arm_reaches_the_study_and_optunas_samplers_ignore_it(tmp_path, teacher_file):
    from autostudent.bench.hypervolume import task_config

    def config(sampler: str):
        return task_config(
            tmp_path, teacher_file, sampler, 0, 40, "fashion-mnist-2k-flops",
            {"gap_share": 0}, prune_gap_proposals=False,
        )  # fmt: skip

    ours, gp = config("botorch").search, config("gp").search
    assert ours.prune_gap_proposals is False and ours.coverage.gap_share == 0
    assert gp.prune_gap_proposals is True and gp.coverage.gap_share == pytest.approx(1 / 3)
    assert ours.early_stopping == "moasha" and ours.objectives == ["accuracy", "flops"]


@pytest.mark.slow  # real searches, one per sampler
def test_bench_writes_raw_runs_and_resumes(tmp_path, teacher_file):
    import ray

    names = ["random", "tpe"]
    try:
        result = bench_hypervolume(
            tmp_path, seeds=[0], n_trials=3, samplers=names, teacher=teacher_file, task="digits"
        )
        raw_files = {n: tmp_path / "runs" / f"{n}-seed0.json" for n in names}
        stamps = {n: p.stat().st_mtime_ns for n, p in raw_files.items()}
        again = bench_hypervolume(
            tmp_path, seeds=[0], n_trials=3, samplers=names, teacher=teacher_file, task="digits"
        )
    finally:
        ray.shutdown()
    assert again == result  # nothing was run again ...
    assert {n: p.stat().st_mtime_ns for n, p in raw_files.items()} == stamps  # ... or rewritten
    assert {"task", "trials", "seeds", "samplers"} <= set(result)
    assert result["trials"] == 3 and result["seeds"] == [0]
    for name in names:
        s = result["samplers"][name]
        assert {"hv_median", "hv_q25", "hv_q75", "hv_at", "wall_s_median", "hv_per_s"} <= set(s)
        assert s["hv_at"] == {"10": None, "20": None, "40": None}  # 3 trials reach none
        raw = json.loads(raw_files[name].read_text())
        hv, wall = raw["hv_per_trial"], raw["wall_s_per_trial"]
        assert len(hv) == len(wall) == 3
        assert hv == sorted(hv) and wall == sorted(wall) and wall[0] > 0
        assert s["hv_median"] == hv[-1]
        # the study's own hypervolume, with its one stored reference
        study = studydb.load(
            f"sqlite:///{tmp_path / 'runs' / f'{name}-seed0.db'}", f"hv-{name}-seed0"
        )
        assert studydb.summary(study)["hypervolume"] == pytest.approx(hv[-1])
        assert raw["hv_reference"] == {"params": 50_000}


def test_a_tasks_own_coverage_stays_when_no_arm_names_one(tmp_path, teacher_file, monkeypatch):
    from autostudent.bench.hypervolume import TASKS, task_config

    # as nogap.py sets its arm: the task's own search fields name the rules
    monkeypatch.setitem(TASKS["digits"].fields, "search", {"coverage": {"gap_share": 0.0}})
    ours = task_config(tmp_path, teacher_file, "botorch", 0, 40, "digits").search
    assert ours.coverage.gap_share == 0.0 and ours.prune_gap_proposals is False
