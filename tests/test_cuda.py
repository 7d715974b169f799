"""On an NVIDIA GPU: mixed-precision trials, teacher outputs, a search with four trials sharing
one GPU, and an export trained on it. Every test carries the ``cuda`` mark and is skipped, with
the reason, where torch sees no GPU (conftest.py); ``docker/Dockerfile.cuda``'s ``test`` stage
runs them: ``docker run --gpus all autostudent:cuda-test``.

Never run on a GPU by their author (the machine had none): see docs/bring-your-own.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from autostudent.datasets import Data
from autostudent.device import precision
from autostudent.teacher import TeacherSource, load_teacher
from autostudent.teacher_outputs import teacher_outputs
from autostudent.trial import Budget, KDSettings, run_trial

pytestmark = pytest.mark.cuda


def test_precision_on_the_gpu_is_bf16_or_fp16_with_a_scaler():
    amp = precision("cuda")
    assert amp.dtype in (torch.bfloat16, torch.float16)
    assert amp.scaler.is_enabled() == (amp.dtype == torch.float16)
    conv = torch.nn.Conv2d(3, 4, 3).cuda()
    with amp.autocast():
        assert conv(torch.rand(2, 3, 8, 8, device="cuda")).dtype == amp.dtype


def test_teacher_outputs_on_the_gpu_agree_with_the_cpu(teacher_file, digits: Data, tmp_path):
    cpu = teacher_outputs(load_teacher(TeacherSource(teacher_file), "cpu"), digits, tmp_path / "c")
    gpu = teacher_outputs(
        load_teacher(TeacherSource(teacher_file), "cuda"), digits, tmp_path / "g", device="cuda"
    )
    assert gpu.logits.dtype == torch.float32 and gpu.logits.device.type == "cpu"
    agree = (gpu.logits.argmax(1) == cpu.logits.argmax(1)).float().mean().item()
    assert agree > 0.99  # half-precision logits; argmax flips only on near-ties
    assert abs(gpu.val_accuracy - cpu.val_accuracy) < 0.01


def test_a_kd_trial_trains_on_the_gpu(teacher_file, digits: Data, tmp_path):
    from autostudent.spaces import load_space

    outputs = teacher_outputs(load_teacher(TeacherSource(teacher_file), "cuda"), digits, tmp_path)
    point = {"depth_0": 1, "depth_1": 1, "depth_2": 1, "width": 16}
    c, size, _ = digits.input_shape
    spec = load_space("chain").build_spec(
        point, 0, in_channels=c, num_classes=digits.num_classes, input_size=size
    )
    result = run_trial(
        spec,
        KDSettings("kd", 4.0, 0.5),
        digits,
        outputs,
        budget=Budget(epochs=3, batch_size=64, lr=0.1),
        seed=0,
        device="cuda",
    )
    assert result.val_accuracy > 0.5  # chance is 0.1
    assert result.latency_ms > 0


def test_function_matching_retrains_on_the_gpu(teacher_file, digits: Data, tmp_path):
    """The patient recipe a GPU is for: ``--augment mixup``, the teacher online on mixed
    images under mixed precision, KD term alone."""
    from autostudent.retrain import retrain
    from autostudent.training import accuracy
    from tests.test_trial import chain_spec

    teacher = load_teacher(TeacherSource(teacher_file), "cuda")
    outputs = teacher_outputs(teacher, digits, tmp_path, device="cuda")
    trained = retrain(
        chain_spec(digits, width=16),
        digits,
        kd=KDSettings("kd", 1.0, 1.0),
        outputs=outputs,
        teacher=teacher,
        budget=Budget(epochs=4, batch_size=64, lr=0.1),
        seed=0,
        augment_with="mixup",
        device="cuda",
    )
    assert next(trained.model.parameters()).is_cuda
    x, y = torch.from_numpy(digits.x_val), torch.from_numpy(digits.y_val)
    assert accuracy(trained.model, x, y, "cuda") > 0.3  # chance is 0.1


def _gpu_study(tmp_path: Path, teacher_file: Path) -> Path:
    config = {
        "study": "gpu",
        "storage": f"sqlite:///{tmp_path / 'gpu.db'}",
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher_file)},
        "space": {"name": "chain", "overrides": {"width": {"low": 8, "high": 16}}},
        "kd": {"losses": ["kd", "rkd"]},
        "budget": {"epochs": 2, "batch_size": 64},
        "search": {"n_trials": 4, "workers": 4, "n_startup_trials": 4, "sampler": "random",
                   "early_stopping": "none"},
        "resources": {"device": "cuda", "gpus_per_trial": 0.25, "cpus_per_trial": 1},
    }  # fmt: skip
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_four_trials_on_one_gpu_then_export_from_it(tmp_path, teacher_file, cli):
    import ray

    from autostudent.config import load_config
    from autostudent.driver import run_search
    from autostudent.executor import Resources, init_ray

    path = _gpu_study(tmp_path, teacher_file)
    # Ray sees the machine's GPUs; the CPUs are logical, so four trials fit on a small machine
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    init_ray(None, Resources(workers=4))  # already initialised: a no-op
    try:
        study = run_search(load_config(path), show_progress=False)
        bundles = [pg["bundles"][0] for pg in ray.util.placement_group_table().values()]
    finally:
        ray.shutdown()
    trials = study.get_trials(deepcopy=False)
    assert sum(t.state.name == "COMPLETE" for t in trials) == 4
    assert all(b.get("GPU") == 0.25 for b in bundles) and len(bundles) == 4

    out = tmp_path / "student"
    shutil.rmtree(out, ignore_errors=True)
    code, _stdout, stderr = cli(
        "export", "--storage", f"sqlite:///{tmp_path / 'gpu.db'}", "--study", "gpu",
        "--pick", "knee", "--epochs", "2", "--format", "both", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["device"] == "cuda"
    assert metrics["test_accuracy"] > 0.5
    assert abs(metrics["onnx"]["test_accuracy"] - metrics["test_accuracy"]) <= 0.002


def test_a_study_searched_on_the_cpu_exports_on_the_gpu(tmp_path, digits_study, cli):
    """--device cuda: the long export of a study searched on a CPU runs on the GPU."""
    out = tmp_path / "student"
    code, stdout, stderr = cli(
        "export", "--storage", f"sqlite:///{digits_study[0]}", "--study", digits_study[1],
        "--trial", "0", "--epochs", "2", "--augment", "mixup", "--no-baseline", "--device",
        "cuda", "--json", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["device"] == "cuda" and metrics["test_accuracy"] > 0


def test_a_study_searched_on_the_cpu_gets_its_baselines_on_the_gpu(tmp_path, digits_study, cli):
    """baselines --device cuda: the hand-designed students of a CPU-searched study trained on
    the GPU, in worker processes (the pool's workers get the overridden config)."""
    copy = tmp_path / "study.db"
    shutil.copyfile(digits_study[0], copy)
    code, stdout, stderr = cli(
        "baselines", "--storage", f"sqlite:///{copy}", "--study", digits_study[1], "--families",
        "resnet8", "--sizes", "3000", "--seeds", "1", "--epochs", "2", "--no-students",
        "--workers", "2", "--device", "cuda", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["device"] == "cuda"
    assert all(b["test_accuracy_mean"] > 0.3 for b in result["baselines"])
