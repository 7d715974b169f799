"""``bench throughput``: every mode measured in one process on real Fashion-MNIST images, the
ratios computed from the medians it prints beside them."""

from __future__ import annotations

import json

import pytest


def test_throughput_prints_each_mode_and_the_ratios_of_its_own_medians(cli):
    code, out, err = cli(
        "bench", "throughput", "--images", "512", "--batch-size", "64", "--rounds", "1",
        "--threads", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    r = json.loads(out)
    modes = ("student_ce_img_s", "kd_img_s", "naive_kd_img_s", "naive_kd_cl_img_s")
    assert all(r[m] > 0 for m in modes)
    assert r["kd_efficiency"] == pytest.approx(r["kd_img_s"] / r["student_ce_img_s"])
    assert r["naive_efficiency"] == pytest.approx(r["naive_kd_img_s"] / r["student_ce_img_s"])
    speedup = r["naive_kd_cl_img_s"] / r["naive_kd_img_s"]
    assert r["teacher_channels_last_speedup"] == pytest.approx(speedup)
    # the layout moves no logit by more than float rounding: the same teacher
    assert 0 <= r["channels_last_max_diff"] < 1e-4
    assert (r["images"], r["batch_size"], r["threads"], r["rounds"]) == (512, 64, 1, 1)
