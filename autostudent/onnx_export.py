"""student.onnx: the exported student as ONNX with a dynamic batch, checked with onnxruntime.

torch's TorchScript-based exporter (``dynamo=False``) traces the module the way
``export.deployable`` traces it for student.pt (the random-graph students loop over Python lists;
the graph is fixed, so a trace is exact) and needs no onnxscript. Export then runs the file in
onnxruntime on the test split beside the torch module and fails when the logits or the accuracy
disagree, so a student.onnx that exists was checked on the data it will be used on.
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autostudent.errors import ExportFailed, UserError
from autostudent.registry import Registry

OPSET = 17  # onnxruntime ≥ 1.13 runs it; the students use convolutions, BN, pooling, linear
INPUT, OUTPUT = "images", "logits"
# Largest |torch logit - onnxruntime logit| accepted: float32 kernels differ in summation order
# (~1e-6 relative); 1e-3 absolute leaves room for that and catches a wrong graph.
LOGIT_TOLERANCE = 1e-3
ACCURACY_TOLERANCE = 0.002  # argmax flips on near-ties only


@dataclass(frozen=True)
class Format:
    torchscript: bool  # student.pt
    onnx: bool  # student.onnx


FORMATS: Registry[Format] = Registry("export format")
FORMATS.register("torchscript")(Format(torchscript=True, onnx=False))
FORMATS.register("onnx")(Format(torchscript=False, onnx=True))
FORMATS.register("both")(Format(torchscript=True, onnx=True))


def export_format(name: str) -> Format:
    try:
        return FORMATS.get(name)
    except UserError as exc:
        raise UserError(f"--format: {exc}") from None


def to_onnx(module: nn.Module, input_shape: Iterable[int]) -> bytes:
    """``module`` (CPU, float32, in eval mode: the caller's job) as an ONNX model whose batch
    dimension is dynamic. The mode is preserved, not set: a ``torch.export`` teacher refuses
    ``.train(False)``."""
    buffer = io.BytesIO()
    example = torch.rand(2, *input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's and torch.jit's notices
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        )
    return buffer.getvalue()


def session(model: bytes, threads: int = 1):
    """An onnxruntime CPU session on ``threads`` intra-op threads, without spinning: idle
    threads that spin would steal the cores of the trial beside it (and bias its latency)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no per-session info lines
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def latency_ms(
    model: bytes,
    input_shape: Iterable[int],
    repeats: int = 30,
    warmup: int = 5,
    threads: int | None = None,
    input_name: str = INPUT,
) -> float:
    """Median wall time of a batch-1 onnxruntime run in milliseconds, after ``warmup`` runs,
    on ``threads`` threads (torch's thread count by default: a trial's share of the cores)."""
    sess = session(model, threads or torch.get_num_threads())
    x = np.zeros((1, *input_shape), np.float32)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        sess.run(None, {input_name: x})
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


@torch.inference_mode()
def check_onnx(
    model: bytes, module: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 256
) -> dict:
    """Run ``model`` in onnxruntime and ``module`` in torch on (x, y) (images in [0, 1]); raise
    ExportFailed when a logit or the accuracy differs beyond tolerance. Returns what was
    compared, for metrics.json."""
    sess = session(model, torch.get_num_threads())
    worst, agree, correct_onnx, correct_torch = 0.0, 0, 0, 0
    for start in range(0, len(x), batch_size):
        xb = np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)
        yb = y[start : start + batch_size]
        ours = sess.run([OUTPUT], {INPUT: xb})[0]
        theirs = module(torch.from_numpy(xb)).float().numpy()
        worst = max(worst, float(np.abs(ours - theirs).max()))
        agree += int((ours.argmax(1) == theirs.argmax(1)).sum())
        correct_onnx += int((ours.argmax(1) == yb).sum())
        correct_torch += int((theirs.argmax(1) == yb).sum())
    n = max(len(x), 1)
    result = {
        "test_accuracy": correct_onnx / n,
        "torch_test_accuracy": correct_torch / n,
        "max_abs_logit_diff": worst,
        "argmax_agreement": agree / n,
        "opset": OPSET,
    }
    if worst > LOGIT_TOLERANCE or abs(correct_onnx - correct_torch) / n > ACCURACY_TOLERANCE:
        raise ExportFailed(
            f"student.onnx disagrees with the torch student on the test split: logits differ by "
            f"up to {worst:.3g} (tolerance {LOGIT_TOLERANCE}), accuracy "
            f"{correct_onnx / n:.4f} vs {correct_torch / n:.4f}; nothing was written"
        )
    return result


def onnx_artefact(
    module: nn.Module, input_shape: Iterable[int], x: np.ndarray, y: np.ndarray
) -> tuple[bytes, dict]:
    """student.onnx's bytes from the deployable module (normalisation inside), and its check
    on the test split (``check_onnx``): what metrics.json records under ``onnx``."""
    model = to_onnx(module, input_shape)
    return model, check_onnx(model, module, x, y)
