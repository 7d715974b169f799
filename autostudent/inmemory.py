"""In-memory inputs of the Python API stored as the files a study identifies them by: a teacher
``nn.Module`` as a teacher file, data arrays as an ``.npz`` dataset.

A study knows its teacher by the SHA-256 of a file: the teacher-output cache is keyed by it, a
resumed study checks it, and ``export`` reloads the teacher from the path the study stores,
possibly in another process. So a module is saved once, as a self-contained ``torch.export``
archive (what ``autostudent teacher train`` writes), under
``<cache_dir>/teachers/<sha256[:20]>.pt2``, named by the SHA-256 of its bytes. The archive of a
module is byte-identical from one export to the next (checked: two processes, same torch), so
the same module (same code, same weights) passed again, in another session, finds the same
file: its cached outputs, and the study it resumes.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from autostudent.errors import UserError


def store_teacher(module: nn.Module, input_shape: tuple[int, ...], cache_dir: Path) -> Path:
    """Save ``module`` as a ``torch.export`` archive named by its SHA-256; return its path.

    The user's module is left as it was (device, train/eval mode): a copy is exported.
    """
    if not isinstance(module, nn.Module):
        raise UserError(f"teacher: expected a path or a torch.nn.Module, got {type(module)!r}")
    frozen = copy.deepcopy(module).cpu().eval()
    example = (torch.zeros(2, *input_shape),)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    try:
        program = torch.export.export(frozen, example, dynamic_shapes=({0: batch},))
    except Exception as exc:  # data-dependent control flow, unsupported ops…
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"teacher: torch.export cannot capture the {type(module).__name__} module on inputs "
            f"of shape {tuple(input_shape)} ({first}); save it as TorchScript and pass its path"
        ) from None
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    blob = buffer.getvalue()
    folder = Path(cache_dir) / "teachers"
    path = folder / f"{hashlib.sha256(blob).hexdigest()[:20]}.pt2"
    if path.is_file() and path.read_bytes() == blob:
        return path  # the same module, stored before (a damaged file is rewritten)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(blob)
        tmp.replace(path)  # atomic: a concurrent writer of the same module writes the same bytes
    finally:
        tmp.unlink(missing_ok=True)
    return path


ARRAY_KEYS = ("x", "y", "x_test", "y_test")


def store_arrays(arrays: dict[str, object], cache_dir: Path) -> Path:
    """Write ``arrays`` as an ``.npz`` named by their content; return its path."""
    unknown = sorted(set(arrays) - set(ARRAY_KEYS))
    if unknown:
        raise UserError(f"data: unknown array {unknown[0]!r} (arrays: {', '.join(ARRAY_KEYS)})")
    values = {k: np.ascontiguousarray(np.asarray(arrays[k])) for k in ARRAY_KEYS if k in arrays}
    digest = hashlib.sha256()
    for key, value in values.items():
        if value.dtype == object:
            raise UserError(f"data: array {key!r} holds Python objects, not numbers")
        digest.update(f"{key}{value.dtype.str}{value.shape}".encode())
        digest.update(value.data)
    path = Path(cache_dir) / "data" / f"{digest.hexdigest()[:20]}.npz"
    if path.is_file():
        return path  # the same arrays, stored before (read_npz checks the file when loading)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    try:
        np.savez(tmp, **values)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
