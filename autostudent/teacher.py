"""The fixed teacher: loaded once from a file whose hash identifies it, checked against the data.

Formats (a registry, picked by the archive's contents unless the config names one):
``export`` (a ``torch.export`` archive, what ``autostudent teacher train`` writes), ``torchscript``,
and ``state_dict`` (weights loaded with ``weights_only=True`` into a ``package.module:factory``
or a zoo architecture). Relational KD needs the teacher's penultimate features: they are the
input of its last linear layer, found per format.
"""

from __future__ import annotations

import hashlib
import importlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autostudent.datasets import Data
from autostudent.errors import UserError
from autostudent.registry import Registry
from autostudent.training import accuracy
from autostudent.zoo import TEACHERS

FeatureFn = Callable[[torch.Tensor], tuple[torch.Tensor, "torch.Tensor | None"]]


@dataclass(frozen=True)
class TeacherSource:
    """Where the teacher comes from (the ``teacher:`` section of a study config)."""

    path: Path
    format: str = "auto"
    factory: str | None = None  # "package.module:callable" or "zoo:resnet8" for state_dict files
    kwargs: tuple[tuple[str, Any], ...] = ()
    # the images it expects: "normalised" (by the data's mean and std), "unit" ([0, 1]), or
    # its own normalisation as (mean, std) per channel (config.TeacherConfig.input)
    input: str | tuple[tuple[float, ...], tuple[float, ...]] = "normalised"

    @classmethod
    def of(cls, config: Any, path: Path | None = None) -> TeacherSource:
        """From a study's ``teacher:`` section (``config.TeacherConfig``), at ``path`` if given."""
        expects = config.input
        if not isinstance(expects, str):
            expects = (tuple(expects.mean), tuple(expects.std))
        kwargs = tuple(config.kwargs.items())
        return cls(path or config.path, config.format, config.factory, kwargs, expects)


@dataclass
class Teacher:
    path: Path
    sha256: str  # the file's: what a study and export check the teacher file by
    format: str
    module: nn.Module  # as loaded: it takes the images `input` names
    forward_with_features: FeatureFn  # takes the data's normalised images
    has_features: bool
    input: str = "normalised"

    @property
    def identity(self) -> str:
        """What its outputs on the data depend on: the file, and the images it is fed. The
        file's SHA-256 for the default input (so existing caches and stores keep their keys)."""
        if self.input == "normalised":
            return self.sha256
        return hashlib.sha256(f"{self.sha256}|input {self.input}".encode()).hexdigest()

    def params(self) -> int:
        # an ONNX teacher's weights are its graph's initializers, which torch does not see
        counted = getattr(self.module, "onnx_params", None)
        return counted if counted is not None else sum(p.numel() for p in self.module.parameters())

    def accuracy(self, data: Data, device: str = "cpu") -> tuple[float, float | None]:
        """Validation and test accuracy (test None when the data has no test split)."""

        def predict(x: torch.Tensor) -> torch.Tensor:
            return self.forward_with_features(x)[0]

        val = accuracy(predict, data.x_val, data.y_val, device)
        test = None if data.x_test is None else accuracy(predict, data.x_test, data.y_test, device)
        return val, test


LOADERS: Registry[Callable[[TeacherSource], nn.Module]] = Registry("teacher format")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path) -> str:
    try:
        names = zipfile.ZipFile(path).namelist()
    except (zipfile.BadZipFile, OSError):
        from autostudent.onnx_teacher import is_onnx

        if is_onnx(path):
            return "onnx"
        raise UserError(
            f"teacher.path: {path} is neither a PyTorch archive nor an ONNX model"
        ) from None
    if any(n.endswith("/archive_format") or "/models/" in n for n in names):
        return "export"
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    return "state_dict"


@LOADERS.register("export")
def _load_export(source: TeacherSource) -> nn.Module:
    return torch.export.load(str(source.path)).module()


@LOADERS.register("torchscript")
def _load_torchscript(source: TeacherSource) -> nn.Module:
    return torch.jit.load(str(source.path), map_location="cpu")


@LOADERS.register("onnx")
def _load_onnx(source: TeacherSource) -> nn.Module:
    from autostudent.onnx_teacher import OnnxTeacher

    return OnnxTeacher(Path(source.path).read_bytes())


@LOADERS.register("state_dict")
def _load_state_dict(source: TeacherSource) -> nn.Module:
    if not source.factory:
        raise UserError(
            f"teacher.factory: {source.path} holds a state_dict; name the architecture as "
            "'package.module:factory' or 'zoo:NAME'"
        )
    module = resolve_factory(source.factory)(**dict(source.kwargs))
    state = torch.load(source.path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(
            f"teacher.path: {source.path} does not fit {source.factory}: {first}"
        ) from None
    return module


def _reason(exc: Exception) -> str:
    """One line for the error message: torch's errors span many lines (weights_only refusals
    carry a whole tutorial), so keep the unpickler's own complaint or else the first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    refusal = [line for line in lines if line.startswith("WeightsUnpickler error:")]
    if refusal:
        what = refusal[0].removeprefix("WeightsUnpickler error:").strip().split(". ")[0]
        return f"weights_only loading refused it ({what}); is it a plain state_dict?"
    return lines[0] if lines else type(exc).__name__


def resolve_factory(spec: str, field: str = "teacher.factory") -> Callable[..., nn.Module]:
    """``package.module:callable`` (or ``zoo:NAME``) → the callable; ``field`` names the setting
    in the error of a bad one."""
    mod_name, _, attr = spec.partition(":")
    if not attr:
        raise UserError(f"{field}: {spec!r} is not of the form 'package.module:factory'")
    if mod_name == "zoo":
        try:
            return TEACHERS.get(attr)
        except UserError as exc:
            raise UserError(f"{field}: {exc}") from None
    try:
        return getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        hint = " (is its directory on PYTHONPATH?)" if isinstance(exc, ImportError) else ""
        raise UserError(f"{field}: cannot import {spec!r} ({exc}){hint}") from None


def load_teacher(
    source: TeacherSource,
    device: str = "cpu",
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    normalisation: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> Teacher:
    """Load, move to ``device`` and freeze a teacher; zoo state_dicts get the data's shape.

    ``normalisation``: the data's per-channel (mean, std), which a teacher whose ``input`` is
    not "normalised" needs: it is fed the data's images mapped back to what it expects."""
    path = Path(source.path)
    if not path.is_file():
        raise UserError(f"teacher.path: {path} does not exist")
    fmt = detect_format(path) if source.format == "auto" else source.format
    try:
        kwargs = dict(source.kwargs)
        if (source.factory or "").startswith("zoo:") and input_shape and num_classes:
            kwargs = {"in_channels": input_shape[0], "num_classes": num_classes, **kwargs}
        module = LOADERS.get(fmt)(TeacherSource(path, fmt, source.factory, tuple(kwargs.items())))
    except UserError:
        raise
    except Exception as exc:  # a corrupt archive: name the file, not a traceback
        raise UserError(f"teacher.path: cannot load {path} as {fmt}: {_reason(exc)}") from None
    module = module.to(device)
    if not isinstance(module, torch.fx.GraphModule):  # an exported program is frozen in eval mode
        module.eval()
    fn, has_features = feature_extractor(module)
    fn, label = _fed(fn, source.input, normalisation, device)
    return Teacher(path, file_sha256(path), fmt, module, fn, has_features, label)


def _fed(fn: FeatureFn, expects, normalisation, device: str) -> tuple[FeatureFn, str]:
    """``fn`` taking the data's normalised images, and a label of what the teacher is fed.

    The data reach trials normalised, ``(pixel - mean) / std`` with the training split's
    per-channel statistics; a teacher that expects other images gets them through one affine
    map per channel, on the teacher's device: pixel = x * std + mean, then its own
    ``(pixel - mean_t) / std_t`` ("unit" is mean_t 0, std_t 1)."""
    if expects == "normalised":
        return fn, "normalised"
    if normalisation is None:
        raise ValueError("a teacher whose input is not 'normalised' needs the data's mean/std")
    label = "unit" if expects == "unit" else f"mean {list(expects[0])} std {list(expects[1])}"
    mean, std, t_mean, t_std = (
        torch.tensor(v, dtype=torch.float32)
        for v in (*normalisation, *(((0.0,), (1.0,)) if expects == "unit" else expects))
    )
    if len(t_mean) not in (1, len(mean)):
        raise UserError(
            f"teacher.input.mean: {len(t_mean)} values, the data has {len(mean)} "
            f"channel{'s' if len(mean) > 1 else ''}"
        )
    scale, shift = (v.view(1, -1, 1, 1).to(device) for v in (std / t_std, (mean - t_mean) / t_std))

    def fed(x: torch.Tensor):
        return fn(x * scale.to(x.dtype) + shift.to(x.dtype))

    return fed, label


def feature_extractor(module: nn.Module) -> tuple[FeatureFn, bool]:
    """A function returning (logits, penultimate features or None) in one forward pass."""
    if hasattr(module, "forward_with_features"):  # an ONNX teacher taps its own graph
        return module.forward_with_features, module.has_features
    if isinstance(module, torch.fx.GraphModule):  # before body/head: those are empty shells here
        return _fx_tap(module)
    if hasattr(module, "body") and hasattr(module, "head"):
        # autostudent's own layout (zoo, students), also when scripted: body → features → head.
        def body_head(x):
            feats = module.body(x)
            return module.head(feats), feats

        return body_head, True
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if linears and not isinstance(module, torch.jit.ScriptModule):
        captured: dict[str, torch.Tensor] = {}
        linears[-1].register_forward_pre_hook(lambda _m, inp: captured.__setitem__("x", inp[0]))

        def hooked(x):
            out = module(x)
            return out, captured.pop("x", None)

        return hooked, True
    return (lambda x: (module(x), None)), False


def _fx_tap(gm: torch.fx.GraphModule) -> tuple[FeatureFn, bool]:
    """For a ``torch.export`` program: insert a node that records the last linear's input."""
    linear_ops = {torch.ops.aten.linear.default, torch.ops.aten.addmm.default}
    nodes = [n for n in gm.graph.nodes if n.op == "call_function" and n.target in linear_ops]
    if not nodes:
        return (lambda x: (gm(x), None)), False
    last = nodes[-1]
    feat_node = last.args[0] if last.target == torch.ops.aten.linear.default else last.args[1]
    captured: dict[str, torch.Tensor] = {}
    _CAPTURES[id(gm)] = captured
    with gm.graph.inserting_after(feat_node):
        gm.graph.call_function(_capture, (id(gm), feat_node))
    gm.recompile()

    def tapped(x):
        out = gm(x)
        return out, captured.pop("x", None)

    return tapped, True


_CAPTURES: dict[int, dict[str, torch.Tensor]] = {}


def _capture(key: int, value: torch.Tensor) -> None:
    _CAPTURES[key]["x"] = value


def check_teacher(teacher: Teacher, input_shape: tuple[int, ...], num_classes: int) -> None:
    """Fail with one clear line when the teacher does not fit the data."""
    device = next(iter(teacher.module.parameters()), torch.empty(0)).device
    probe = torch.zeros(2, *input_shape, device=device)
    try:
        with torch.inference_mode():
            logits, _ = teacher.forward_with_features(probe)
    except Exception as exc:
        raise UserError(
            f"teacher.path: {teacher.path} rejects inputs of shape {tuple(input_shape)}: "
            f"{_reason(exc)}"
        ) from None
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise UserError(
            f"teacher.path: {teacher.path} outputs shape {tuple(logits.shape[1:])}, "
            f"the data has {num_classes} classes"
        )


def save_teacher(module: nn.Module, path: Path, input_shape: tuple[int, ...]) -> None:
    """Write a self-contained ``torch.export`` archive with a dynamic batch dimension."""
    module = module.cpu().eval()
    example = (torch.zeros(2, *input_shape),)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    program = torch.export.export(module, example, dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.pt2")
    torch.export.save(program, str(tmp))
    tmp.replace(path)
