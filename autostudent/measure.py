"""Size and speed of a network: parameters, FLOPs and batch-1 latency.

Latency depends on the runtime that runs the network: ``LATENCY_RUNTIMES`` holds one function a
runtime (``resources.latency_runtime``): ``torch`` runs the module itself, ``onnxruntime`` runs
its ONNX export (what a deployment without Python's torch runs). Both pin their threads (torch's
thread count, which a trial sets to its CPUs), warm up, and take the median of repeated runs.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autostudent.errors import UserError
from autostudent.registry import Registry

# (module, input shape without the batch) -> median batch-1 latency in milliseconds
LatencyFn = Callable[[nn.Module, tuple[int, ...]], float]
LATENCY_RUNTIMES: Registry[LatencyFn] = Registry("latency runtime")


def count_params(module: nn.Module) -> int:
    """Every parameter of the whole module (convs, BN, head): counting only conv weights
    undercounts, the trap of the public NAGO code."""
    return sum(p.numel() for p in module.parameters())


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the measurement, then the previous mode back. A ``torch.export`` program
    is frozen in eval mode already and refuses ``.eval()``."""
    was_training = module.training
    with contextlib.suppress(NotImplementedError):
        module.eval()
    try:
        yield
    finally:
        with contextlib.suppress(NotImplementedError):
            module.train(was_training)


def _device(module: nn.Module) -> torch.device:
    return next(iter(module.parameters()), torch.empty(0)).device


@torch.no_grad()
def count_flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of one example (torch.utils.flop_counter; a multiply-add = 2).
    A module torch cannot see into (an ONNX teacher) counts its own."""
    if hasattr(module, "count_flops"):
        return module.count_flops(input_shape)
    counter = FlopCounterMode(display=False)
    with _eval_mode(module), counter:
        module(torch.zeros(1, *input_shape, device=_device(module)))
    return int(counter.get_total_flops())


@torch.inference_mode()
def latency_ms(
    module: nn.Module, input_shape: tuple[int, ...], repeats: int = 30, warmup: int = 5
) -> float:
    """Median wall time of a batch-1 forward pass in milliseconds, in eval mode."""
    device = _device(module)
    x = torch.zeros(1, *input_shape, device=device)
    times = []
    with _eval_mode(module):
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            module(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


LATENCY_RUNTIMES.register("torch")(latency_ms)


@LATENCY_RUNTIMES.register("onnxruntime")
def onnxruntime_latency_ms(module: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The module exported to ONNX (on the CPU, float32) and timed in onnxruntime."""
    from autostudent import onnx_export  # onnx and onnxruntime: only this runtime needs them

    if hasattr(module, "onnx_model"):  # an ONNX teacher: its own file, as the user gave it
        return onnx_export.latency_ms(module.onnx_model, input_shape, input_name=module.input_name)
    try:
        with _eval_mode(module):
            model = onnx_export.to_onnx(_on_cpu(module), input_shape)
    except Exception as exc:  # e.g. a scripted teacher with control flow the exporter refuses
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise UserError(
            f"resources.latency_runtime: onnxruntime cannot time this network, its ONNX export "
            f"failed ({reason}); use latency_runtime: torch"
        ) from None
    return onnx_export.latency_ms(model, input_shape)


def _on_cpu(module: nn.Module) -> nn.Module:
    # onnxruntime runs here on the CPU; a trial on the GPU keeps its own module where it is
    if _device(module).type == "cpu":
        return module
    import copy

    return copy.deepcopy(module).cpu()


def measure_latency(runtime: str, module: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Batch-1 latency (ms) of ``module`` as ``runtime`` runs it."""
    return LATENCY_RUNTIMES.get(runtime)(module, input_shape)
