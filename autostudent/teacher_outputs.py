"""Teacher outputs computed once per (teacher file, data split) and kept on disk.

The teacher is fixed, so running it inside every trial is pure waste: here it runs once over
the training split, and every later trial, study or process with the same teacher file and the
same data identity reads the stored logits (and penultimate features, for relational losses).
A changed teacher file has a new hash, hence a new cache entry.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autostudent.datasets import Data
from autostudent.teacher import Teacher

CACHE_VERSION = 1


@dataclass(frozen=True)
class TeacherOutputs:
    logits: torch.Tensor  # (len(x_train), classes), aligned with Data.x_train
    features: torch.Tensor | None  # (len(x_train), D) or None when the teacher exposes none
    val_accuracy: float
    test_accuracy: float | None
    params: int
    path: Path


def default_cache_dir() -> Path:
    env = os.environ.get("AUTOSTUDENT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "autostudent"


def cache_path(teacher: Teacher, data: Data, cache_dir: Path | None = None) -> Path:
    root = cache_dir or default_cache_dir()
    return root / "teacher_outputs" / f"v{CACHE_VERSION}-{teacher.sha256[:20]}-{data.identity}.pt"


def teacher_outputs(
    teacher: Teacher,
    data: Data,
    cache_dir: Path | None = None,
    *,
    device: str = "cpu",
    batch_size: int = 512,
) -> TeacherOutputs:
    """Load the cached outputs, or compute and store them (atomically) when absent."""
    path = cache_path(teacher, data, cache_dir)
    if path.is_file():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored["logits"].shape[0] == len(data.x_train):
            return _from_stored(stored, path)
    stored = _compute(teacher, data, device, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    try:
        torch.save(stored, tmp)
        tmp.replace(path)  # atomic: concurrent writers leave one whole file, readers never see half
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (disk full, kill) leaves no partial file
    return _from_stored(stored, path)


def _from_stored(stored: dict, path: Path) -> TeacherOutputs:
    test = stored["test_accuracy"]
    return TeacherOutputs(
        logits=stored["logits"],
        features=stored.get("features"),
        val_accuracy=float(stored["val_accuracy"]),
        test_accuracy=None if test < 0 else float(test),
        params=int(stored["params"]),
        path=path,
    )


@torch.inference_mode()
def _compute(teacher: Teacher, data: Data, device: str, batch_size: int) -> dict:
    started = time.perf_counter()
    x = torch.from_numpy(data.x_train)
    logits, features = [], []
    for start in range(0, len(x), batch_size):
        out, feats = teacher.forward_with_features(x[start : start + batch_size].to(device))
        logits.append(out.float().cpu())
        if feats is not None:
            features.append(feats.flatten(1).float().cpu())

    val, test = teacher.accuracy(data, device)
    test = -1.0 if test is None else test  # stored as a tensor-friendly float
    return {
        "logits": torch.cat(logits),
        "features": torch.cat(features) if features else None,
        "val_accuracy": val,
        "test_accuracy": test,
        "params": teacher.params(),
        "seconds": time.perf_counter() - started,
    }
