"""Teacher outputs computed once per (teacher file, data split) and kept on disk.

The teacher is fixed, so running it inside every trial is pure waste: here it runs once over
the training split, and every later trial, study or process with the same teacher file and the
same data identity reads the stored logits (and penultimate features, for relational losses).
A changed teacher file has a new hash, hence a new cache entry. Entries are written atomically
and carry a SHA-256 of their tensors: a corrupt, truncated or half-written file is detected on
read and rebuilt (the reason is kept in ``TeacherOutputs.rebuilt``).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autostudent import killpoints
from autostudent.datasets import Data
from autostudent.device import precision
from autostudent.processes import pid_alive
from autostudent.teacher import Teacher

CACHE_VERSION = 2  # 2: entries carry a checksum


@dataclass(frozen=True)
class TeacherOutputs:
    logits: torch.Tensor  # (len(x_train), classes), aligned with Data.x_train
    features: torch.Tensor | None  # (len(x_train), D) or None when the teacher exposes none
    val_accuracy: float
    test_accuracy: float | None
    params: int
    path: Path
    rebuilt: str | None = None  # why an existing entry was not usable and was rebuilt


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
    """Load the cached outputs, or compute and store them (atomically) when absent or damaged."""
    path = cache_path(teacher, data, cache_dir)
    rebuilt = None
    if path.is_file():
        stored, rebuilt = _read(path, len(data.x_train))
        if rebuilt is None:
            return _from_stored(stored, path)
    stored = _compute(teacher, data, device, batch_size)
    stored["sha256"] = _checksum(stored)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    try:
        torch.save(stored, tmp)
        killpoints.reached("teacher_cache")  # the fault tests kill the driver mid-write here
        tmp.replace(path)  # atomic: concurrent writers leave one whole file, readers never see half
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no partial file
    _remove_orphans(path)
    return _from_stored(stored, path, rebuilt)


def _read(path: Path, rows: int) -> tuple[dict, str | None]:
    """The stored entry, or why it cannot be used (unreadable, other length, checksum)."""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or garbage: torch says so in many ways
        return {}, f"unreadable ({type(exc).__name__})"
    if not isinstance(stored, dict) or "logits" not in stored:
        return {}, "not a teacher-output entry"
    if stored["logits"].shape[0] != rows:
        return {}, f"{stored['logits'].shape[0]} rows, the split has {rows}"
    if stored.get("sha256") != _checksum(stored):
        return {}, "checksum mismatch"
    return stored, None


def _checksum(stored: dict) -> str:
    digest = hashlib.sha256()
    for key in ("logits", "features"):
        if stored.get(key) is not None:
            digest.update(stored[key].contiguous().numpy().tobytes())
    digest.update(repr([stored[k] for k in ("val_accuracy", "test_accuracy", "params")]).encode())
    return digest.hexdigest()


def _remove_orphans(path: Path) -> None:
    """Partial files of writers that were killed mid-write (SIGKILL skips ``finally``)."""
    for orphan in path.parent.glob(f"{path.stem}.*.partial"):
        pid = orphan.name.removeprefix(f"{path.stem}.").removesuffix(".partial")
        if pid.isdigit() and not pid_alive(int(pid)):
            orphan.unlink(missing_ok=True)


def _from_stored(stored: dict, path: Path, rebuilt: str | None = None) -> TeacherOutputs:
    test = stored["test_accuracy"]
    return TeacherOutputs(
        logits=stored["logits"],
        features=stored.get("features"),
        val_accuracy=float(stored["val_accuracy"]),
        test_accuracy=None if test < 0 else float(test),
        params=int(stored["params"]),
        path=path,
        rebuilt=rebuilt,
    )


@torch.inference_mode()
def _compute(teacher: Teacher, data: Data, device: str, batch_size: int) -> dict:
    started = time.perf_counter()
    x = torch.from_numpy(data.x_train)
    logits, features = [], []
    amp = precision(device)  # autocast on a GPU; outputs are stored in float32 either way
    for start in range(0, len(x), batch_size):
        with amp.autocast():
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
