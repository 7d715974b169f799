"""Where training runs: the device, its mixed precision, and a trial's share of the GPUs.

Every loop that trains or evaluates (teacher training, teacher outputs, KD trials, the export
retrain) goes through `precision(device)`: on a CUDA device it gives ``torch.autocast`` (bfloat16
where the GPU has it, else float16 with a ``GradScaler`` against underflowing gradients); on the
CPU the same objects with autocast and the scaler disabled, so the CPU test suite runs the very
code path a GPU runs, in float32.

Ray gives each trial ``gpus_per_trial`` of a GPU (four trials share one at 0.25) and sets the
trial's ``CUDA_VISIBLE_DEVICES`` to the GPU it picked: inside a trial that GPU is ``cuda:0``
(`trial_device`), whatever index the config named for the driver's own work.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from autostudent.errors import UserError

_NAME = re.compile(r"^(cpu|cuda(:\d+)?)$")


def check_device_name(name: str) -> None:
    """ValueError (a config field's message) unless ``name`` is cpu, cuda or cuda:N."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not 'cpu', 'cuda' or 'cuda:N'")


def check_gpus_per_trial(device: str, gpus: float | None) -> float:
    """The GPU share each trial reserves in Ray: None defaults to 1 on cuda and 0 on the cpu."""
    on_gpu = device.startswith("cuda")
    if gpus is None:
        return 1.0 if on_gpu else 0.0
    if not on_gpu and gpus > 0:
        raise ValueError(f"gpus_per_trial: {gpus} GPUs reserved for trials that run on the cpu")
    if on_gpu and gpus == 0:
        # Ray hides every GPU (CUDA_VISIBLE_DEVICES="") from a trial that reserves none
        raise ValueError("gpus_per_trial: must be > 0 with a cuda device (e.g. 0.25: 4 a GPU)")
    if gpus > 1 and not float(gpus).is_integer():
        raise ValueError(f"gpus_per_trial: above 1 it must be whole GPUs, got {gpus}")
    return float(gpus)


def resolve(device: str, field: str = "resources.device") -> torch.device:
    """``device`` as a torch device, or a one-line UserError when it asks for a GPU torch does
    not see (no CUDA build, no driver, no such index)."""
    if not _NAME.match(device):
        raise UserError(f"{field}: {device!r} is not 'cpu', 'cuda' or 'cuda:N'")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA device"
            raise UserError(f"{field}: {device!r} asked for, but torch sees {build}")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UserError(f"{field}: {device!r} asked for, but torch sees {count} GPU(s)")
    return dev


def trial_device(device: str) -> str:
    """The device inside a Ray trial: Ray renumbers the GPU it gave the trial as cuda:0."""
    return "cuda" if device.startswith("cuda") else "cpu"


@dataclass
class Precision:
    """Mixed precision on one device: `autocast()` around forward passes, `backward_step()`
    in place of ``loss.backward(); opt.step()``. Disabled on the CPU (float32 throughout)."""

    device_type: str
    dtype: torch.dtype | None  # None: float32, autocast off
    scaler: torch.amp.GradScaler

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.enabled:  # a disabled torch.autocast costs ~25 us a step for nothing
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, opt) -> None:
        """Backward and step through the scaler: a no-op wrapper when it is disabled; with
        float16 it scales the loss and skips a step whose gradients overflowed."""
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()


def precision(device: str | torch.device, dtype: torch.dtype | None = None) -> Precision:
    """The mixed precision for ``device``: bfloat16 on GPUs that have it (no scaler needed),
    float16 with a GradScaler on older ones, float32 on the CPU. ``dtype`` forces one (the
    tests run the float16 + scaler path on the CPU this way)."""
    dev = torch.device(device)
    if dtype is None and dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    return Precision(dev.type, dtype, scaler)


@contextlib.contextmanager
def inference(device: str | torch.device) -> Iterator[None]:
    """Autocast for evaluation and teacher outputs on ``device`` (nothing on the CPU)."""
    with precision(device).autocast():
        yield


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's CPU thread count set for a block, then restored (None: unchanged)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
