"""``autostudent bench students``: the study's students retrained at final fidelity over seeds,
ranked against the search's proxy, beside the baselines."""

from __future__ import annotations

import json
import shutil

import pytest

from autostudent.bench.students import (
    kd_gap_closed,
    pick_students,
    rank_correlation,
    spread_picks,
)
from autostudent.study import load


def test_rank_correlation_of_a_perfect_and_a_reversed_ranking():
    assert rank_correlation([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8])["kendall_tau"] == 1.0
    assert rank_correlation([0.1, 0.2, 0.3, 0.4], [0.8, 0.7, 0.6, 0.5])["spearman_rho"] == -1.0
    assert rank_correlation([0.1, 0.2], [0.3, 0.4])["kendall_tau"] is None


def test_kd_gap_closed_is_the_share_of_the_no_kd_gap():
    m = {"student": {"trial": 3, "mean": 0.91}, "no_kd": {"mean": 0.89}}
    out = kd_gap_closed(m, 0.93)
    assert out["share"] == pytest.approx(0.5)
    assert out["kd_gain_pt"] == pytest.approx(2.0)
    assert kd_gap_closed(m, 0.88)["share"] is None  # no gap to close
    assert kd_gap_closed({"student": None, "why": "none small"}, 0.9)["why"] == "none small"


def test_picks_skip_an_architecture_already_picked():
    # trials 5 and 6 train the front's 3,434-param net again (other KD settings); 8 repeats 7
    front = [(1, (3434, 900)), (2, (9000, 2000))]
    ranked = [
        (5, (3434, 900)),
        (7, (5000, 1200)),
        (8, (5000, 1200)),
        (6, (3434, 900)),
        (9, (7000, 1)),
    ]
    assert spread_picks(front, ranked, 10) == [1, 2, 7, 9]
    assert spread_picks(front, ranked, 3) == [1, 2, 7]  # room for one: the best-ranked distinct
    assert spread_picks(front, ranked, 2) == [1, 2]
    many = [(10 + i, (100 + i, 0)) for i in range(9)]
    assert spread_picks(front, many, 5) == [1, 2, 10, 14, 18]  # spread over the ranking


@pytest.mark.slow
def test_bench_students_retrains_front_sample_and_baselines(cli, digits_study, tmp_path):
    copy = tmp_path / "study.db"
    shutil.copyfile(digits_study[0], copy)
    url, name = f"sqlite:///{copy}", digits_study[1]
    study = load(url, name)
    picked = pick_students(study, 4)
    front = [
        r["trial"]
        for r in json.loads(cli("status", "--storage", url, "--study", name, "--json")[1])["pareto"]
    ]
    assert picked[: len(front)] == front and len(picked) == min(4, 6)
    assert len(set(picked)) == len(picked)

    out = tmp_path / "summary.json"
    code, _, err = cli("bench", "students", "--storage", url, "--study", name, "--device",
                       "cuda:99", "--out", str(out))  # fmt: skip
    assert code == 2 and err.startswith("error: --device: ") and not out.exists(), err
    code, stdout, err = cli(
        "bench",
        "students",
        "--storage",
        url,
        "--study",
        name,
        "--top",
        "4",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--families",
        "resnet8",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert json.loads(out.read_text()) == result
    assert result["n_students"] == len(picked)
    assert -1 <= result["kendall_tau"] <= 1 and -1 <= result["spearman_rho"] <= 1
    assert all(s["seeds"] == [0, 1] for s in result["students"])
    # the test-accuracy front is non-dominated among the retrained students
    front_params = [p["params"] for p in result["test_front"]]
    assert front_params == sorted(front_params)
    accs = [p["mean"] for p in result["test_front"]]
    assert accs == sorted(accs)
    assert result["test_front_hypervolume"] is None or result["test_front_hypervolume"] >= 0
    assert [m["teacher_fraction"] for m in result["margins"]] == ["1/10", "1/40"]
    assert {m["trial"] for m in result["front_margins"]} == set(front)
    assert result["command"].startswith("autostudent bench students")
    assert result["command"].endswith("--device cpu")
    # --augment: the same evidence at export's mixup recipe, kept apart: none of the runs above
    # count for it, every one is still to run (report-only: nothing trains)
    args = ["bench", "students", "--storage", url, "--study", name, "--top", "4", "--seeds", "2",
            "--epochs", "1", "--families", "resnet8", "--report-only", "--json"]  # fmt: skip
    code, stdout, err = cli(*args, "--augment", "mixup")
    assert code == 0, err
    mixup = json.loads(stdout)
    assert mixup["recipe"]["augment"] == "mixup" and result["recipe"]["augment"] == "none"
    assert mixup["n_students"] == 0 and mixup["runs_to_go"] == result["runs_planned"]
    assert mixup["command"].endswith("--threads 1 --augment mixup")
    code, _, err = cli(*args, "--augment", "views")
    assert code == 2 and err.startswith("error: --augment") and err.count("\n") == 1, err
