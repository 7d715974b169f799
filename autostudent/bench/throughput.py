"""``bench throughput``: what a KD trial costs next to training the student alone.

All figures come from one process, the same student architecture (re-initialised identically
for each mode), the same data and the same batch size, in interleaved rounds (median of rounds)
so that machine noise hits every mode alike:

- ``student_ce_img_s``: plain cross-entropy training of the student;
- ``kd_img_s``: a KD epoch exactly as a search trial runs it (``trial.distill_epoch``), the
  teacher's logits read from the teacher-output cache;
- ``naive_kd_img_s``: the same epoch with the teacher forward run on every batch (as
  ``export --augment online|mixup`` runs it);
- ``naive_kd_cl_img_s``: that epoch with the teacher's weights in channels-last layout (the
  students' layout), and ``teacher_channels_last_speedup``, its ratio to the one before; beside
  it the largest difference of the two layouts' logits on a batch (``channels_last_max_diff``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from autostudent.datasets import load_data
from autostudent.losses import kd_loss
from autostudent.measure import count_params
from autostudent.spaces import load_space
from autostudent.student import build_student
from autostudent.teacher import TeacherSource, load_teacher, save_teacher
from autostudent.teacher_outputs import teacher_outputs
from autostudent.training import sgd, steps_per_epoch
from autostudent.trial import cached_teacher, distill_epoch
from autostudent.zoo import TEACHERS

# A 3-stage conv student of the size the search targets (~70K params, like NOTES' 16/32/64 net).
STUDENT_POINT = {"depth_0": 1, "depth_1": 2, "depth_2": 2, "width": 16}


def bench_throughput(
    teacher_path: Path | None = None,
    images: int = 6400,
    batch_size: int = 256,
    rounds: int = 3,
    threads: int = 2,
    seed: int = 0,
) -> dict:
    torch.set_num_threads(threads)
    data = load_data("fashion-mnist", train_subset=images, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        if (
            teacher_path is None
        ):  # the demo teacher's architecture; its weights do not change its cost
            teacher_path = Path(tmp) / "teacher.pt2"
            torch.manual_seed(seed)
            save_teacher(TEACHERS.get("resnet8")(1, 10, width=32), teacher_path, data.input_shape)
        teacher = load_teacher(TeacherSource(teacher_path))
        teacher_cl = load_teacher(TeacherSource(teacher_path))
        teacher_cl.module.to(memory_format=torch.channels_last)  # in place: its forward's module
        started = time.perf_counter()
        outputs = teacher_outputs(teacher, data, Path(tmp) / "cache")
        cache_seconds = time.perf_counter() - started

    spec = load_space("chain").build_spec(
        STUDENT_POINT, seed, in_channels=1, num_classes=10, input_size=28
    )
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    kd = kd_loss("kd").fn

    def ce(logits, labels, _t, _sf, _tf):
        return F.cross_entropy(logits, labels)

    def distill(logits, labels, t_logits, _sf, _tf):
        return kd(logits, labels, t_logits, temperature=4.0, alpha=0.9)

    def naive_with(t):
        @torch.inference_mode()
        def _teacher_forward(xb):
            return t.forward_with_features(xb)[0]

        def naive(idx, xb):
            return xb, _teacher_forward(xb).clone(), None

        return naive, _teacher_forward

    naive, forward = naive_with(teacher)
    naive_cl, forward_cl = naive_with(teacher_cl)
    probe = x[:batch_size]
    max_diff = (forward(probe) - forward_cl(probe)).abs().max().item()

    cached = cached_teacher(outputs, torch.device("cpu"), features=False)
    modes = {
        "student_ce_img_s": (cached, ce),
        "kd_img_s": (cached, distill),
        "naive_kd_img_s": (naive, distill),
        "naive_kd_cl_img_s": (naive_cl, distill),
    }
    timings: dict[str, list[float]] = {m: [] for m in modes}
    params = 0
    for _ in range(rounds + 1):  # the first round warms up allocators and caches, not counted
        for mode, (teacher_batch, objective) in modes.items():
            torch.manual_seed(seed)
            model = build_student(spec)
            params = count_params(model)
            opt = sgd(model, 0.05, 5e-4, steps_per_epoch(len(x), batch_size))
            gen = torch.Generator().manual_seed(seed)
            t0 = time.perf_counter()
            distill_epoch(
                model, x, y, teacher_batch, objective, opt, batch_size, gen, features=False
            )
            timings[mode].append(len(x) / (time.perf_counter() - t0))
    result = {m: statistics.median(v[1:]) for m, v in timings.items()}
    result["kd_efficiency"] = result["kd_img_s"] / result["student_ce_img_s"]
    result["naive_efficiency"] = result["naive_kd_img_s"] / result["student_ce_img_s"]
    result["teacher_channels_last_speedup"] = result["naive_kd_cl_img_s"] / result["naive_kd_img_s"]
    result["channels_last_max_diff"] = max_diff
    result.update(
        {
            "student_params": params,
            "teacher_params": teacher.params(),
            "images": len(x),
            "batch_size": batch_size,
            "threads": threads,
            "rounds": rounds,
            "teacher_cache_seconds": cache_seconds,
        }
    )
    return result
