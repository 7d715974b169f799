"""ONNX: student.onnx checked inside export, run without torch; latency_ms from onnxruntime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from torch import nn

from autostudent.config import load_config
from autostudent.datasets import unit_test_split
from autostudent.errors import ExportFailed, UserError
from autostudent.measure import LATENCY_RUNTIMES, measure_latency
from autostudent.onnx_export import check_onnx, session, to_onnx


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    ).eval()


def test_onnx_has_a_dynamic_batch_and_matches_torch(single_thread):
    net = small_net()
    model = to_onnx(net, (1, 8, 8))
    sess = session(model)
    for batch in (1, 7, 64):
        x = np.random.default_rng(batch).random((batch, 1, 8, 8), np.float32)
        ours = sess.run(None, {"images": x})[0]
        with torch.no_grad():
            np.testing.assert_allclose(ours, net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_check_onnx_fails_when_the_file_is_not_the_module(single_thread):
    x = np.random.default_rng(0).random((50, 1, 8, 8), np.float32)
    y = np.zeros(50, np.int64)
    ok = check_onnx(to_onnx(small_net(0), (1, 8, 8)), small_net(0), x, y)
    assert ok["max_abs_logit_diff"] < 1e-5 and ok["argmax_agreement"] == 1.0
    with pytest.raises(ExportFailed, match="disagrees"):
        check_onnx(to_onnx(small_net(1), (1, 8, 8)), small_net(0), x, y)


def test_latency_runtimes_time_the_same_module(single_thread):
    assert set(LATENCY_RUNTIMES) == {"torch", "onnxruntime"}
    net = small_net()
    for runtime in LATENCY_RUNTIMES:
        assert 0 < measure_latency(runtime, net, (1, 8, 8)) < 1000
    assert not net.training  # the measurement leaves the mode as it was


def test_a_network_onnx_cannot_export_is_one_line(user_error):
    class SingularValues(nn.Module):  # no ONNX operator for it
        def forward(self, x):
            return torch.linalg.svdvals(x[:, 0])

    user_error(
        lambda: measure_latency("onnxruntime", SingularValues(), (1, 4, 4)),
        "resources.latency_runtime: onnxruntime cannot time this network",
        "aten::linalg_svdvals",
        "latency_runtime: torch",
    )


def test_unknown_latency_runtime_names_the_field(tmp_path, user_error):
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {"study": "s", "teacher": {"path": "t"}, "resources": {"latency_runtime": "tvm"}}
        )
    )
    user_error(lambda: load_config(path), "resources.latency_runtime", "onnxruntime, torch")


# --- export --format ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_db(tmp_path_factory, digits_study) -> tuple[str, str]:
    copy = tmp_path_factory.mktemp("onnx-study") / "study.db"
    shutil.copyfile(digits_study[0], copy)
    return f"sqlite:///{copy}", digits_study[1]


# What a deployment without torch runs: torch cannot even be imported in this process.
NO_TORCH = """
import json, sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this process")

sys.meta_path.insert(0, NoTorch())
import numpy as np
import onnxruntime as ort

test = np.load(sys.argv[2])
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
predicted = np.concatenate([
    session.run(None, {"images": test["x"][i : i + 100]})[0].argmax(1)
    for i in range(0, len(test["x"]), 100)
])
assert "torch" not in sys.modules and not any(m.startswith("autostudent") for m in sys.modules)
print(json.dumps(float((predicted == test["y"]).mean())))
"""


def test_export_both_writes_an_onnx_that_runs_without_torch(cli, study_db, tmp_path):
    url, name = study_db
    out = tmp_path / "student"
    code, _stdout, stderr = cli(
        "export", "--storage", url, "--study", name, "--pick", "knee", "--epochs", "1",
        "--no-baseline", "--format", "both", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["student.pt", "student.onnx", "spec.json", "metrics.json", "card.md"]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["files"] == ["student.pt", "student.onnx"]
    assert metrics["latency_runtime"] == "torch"
    assert metrics["onnx"]["max_abs_logit_diff"] < 1e-3

    test = unit_test_split("digits")
    np.savez(tmp_path / "test.npz", x=test.x, y=test.y)
    run = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(out / "student.onnx"), str(tmp_path / "test.npz")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert abs(json.loads(run.stdout) - metrics["test_accuracy"]) <= 0.002
    assert abs(metrics["onnx"]["test_accuracy"] - metrics["test_accuracy"]) <= 0.002

    card = (out / "card.md").read_text()
    assert "onnxruntime.InferenceSession" in card and "torch.jit.load" in card
    assert "latency (batch 1, torch)" in card


def test_export_onnx_only_and_a_bad_format(cli, study_db, tmp_path):
    url, name = study_db
    out = tmp_path / "onnx-only"
    code, _stdout, stderr = cli(
        "export", "--storage", url, "--study", name, "--pick", "max-accuracy", "--epochs", "1",
        "--no-baseline", "--format", "onnx", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert not (out / "student.pt").exists() and (out / "student.onnx").is_file()
    card = (out / "card.md").read_text()
    assert "torch.jit.load" not in card and "onnxruntime" in card

    bad = tmp_path / "bad"
    code, _stdout, stderr = cli(
        "export", "--storage", url, "--study", name, "--pick", "knee", "--format", "tflite",
        "--out", str(bad),
    )  # fmt: skip
    assert code == 2 and stderr.startswith("error: --format:") and stderr.count("\n") == 1
    assert not bad.exists()


# --- a search with latency_ms from onnxruntime as an objective ---------------------------------


@pytest.mark.slow
def test_search_with_onnxruntime_latency_as_an_objective(tmp_path, teacher_file):
    import ray

    from autostudent.driver import run_search
    from autostudent.executor import Resources, init_ray

    config = {
        "study": "onnx-latency",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher_file)},
        "space": {"name": "chain", "overrides": {"width": {"low": 4, "high": 8}}},
        "kd": {"losses": ["kd"]},
        "budget": {"epochs": 1, "batch_size": 64},
        "caps": {"max_latency_ms": 500.0},
        "search": {
            "n_trials": 2,
            "workers": 2,
            "n_startup_trials": 2,
            "sampler": "random",
            "objectives": ["accuracy", "latency_ms"],
        },
        "resources": {"latency_runtime": "onnxruntime"},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    init_ray(None, Resources(workers=2))
    try:
        study = run_search(load_config(path), show_progress=False)
    finally:
        ray.shutdown()
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 2
    for t in done:
        assert t.values == [t.user_attrs["val_accuracy"], t.user_attrs["latency_ms"]]
        assert 0 < t.user_attrs["latency_ms"] < 500
        assert t.constraints == {"latency_ms": t.user_attrs["latency_ms"] - 500.0}
    assert study.user_attrs["teacher"]["latency_runtime"] == "onnxruntime"
    assert study.user_attrs["config"]["resources"]["latency_runtime"] == "onnxruntime"
    assert optuna.load_study(study_name="onnx-latency", storage=config["storage"]).metric_names == [
        "accuracy",
        "latency_ms",
    ]
    # resuming with the other runtime would mix two runtimes' latencies: refused, nothing written
    config["resources"] = {"latency_runtime": "torch"}
    config["search"]["n_trials"] = 3
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(
        UserError, match=r"resources\.latency_runtime: study 'onnx-latency' measured"
    ):
        run_search(load_config(path), show_progress=False)
    assert len(optuna.load_study(study_name="onnx-latency", storage=config["storage"]).trials) == 2
