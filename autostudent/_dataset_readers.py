"""File formats behind the dataset loaders: IDX (MNIST family), CIFAR pickles, .npz archives.

Each reader validates what it reads and names the offending file in a one-line `UserError`;
`autostudent.datasets` turns the `RawData` they return into normalised splits.
"""

from __future__ import annotations

import gzip
import math
import pickle
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autostudent.errors import UserError

IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True, eq=False)
class RawData:
    """A loader's output: x is (N, C, H, W), uint8 in 0..255 or float32; y is int64 in 0..K-1."""

    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray | None = field(repr=False)
    y_test: np.ndarray | None = field(repr=False)
    num_classes: int
    # A validation split of the dataset's own (image folders' val/); None: carved from train
    x_val: np.ndarray | None = field(default=None, repr=False)
    y_val: np.ndarray | None = field(default=None, repr=False)
    classes: tuple[str, ...] | None = None  # class names by label, when the files name them
    skipped: tuple[str, ...] = ()  # unreadable files left out on request


def check_labels(y: Any, num_classes: int, where: str) -> np.ndarray:
    """`y` as int64 after checking it is 1-D integers in 0..num_classes-1; `where` names it."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{where} must hold 1-D integer labels, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise UserError(f"{where} has labels {y.min()}..{y.max()}, outside 0..{num_classes - 1}")
    return y.astype(np.int64)


def _check_lengths(x: np.ndarray, y: np.ndarray, where: str) -> None:
    if len(x) != len(y):
        raise UserError(f"{where} has {len(x)} images but {len(y)} labels")


# --- IDX ----------------------------------------------------------------------------------------


def read_idx_folder(root: Path, num_classes: int = 10) -> RawData:
    """The four MNIST-style IDX files (each plain or .gz) in `root`."""
    if not root.is_dir():
        raise UserError(f"data.root: {root} is not a folder")
    paths = [_idx_path(root, stem) for stem in IDX_STEMS]
    x_train, y_train, x_test, y_test = (
        _read_idx(path, ndim) for path, ndim in zip(paths, (3, 1, 3, 1), strict=True)
    )
    _check_lengths(x_train, y_train, f"data.root: {root} train split")
    _check_lengths(x_test, y_test, f"data.root: {root} t10k split")
    return RawData(
        x_train=x_train[:, None],
        y_train=check_labels(y_train, num_classes, f"data.root: {paths[1]}"),
        x_test=x_test[:, None],
        y_test=check_labels(y_test, num_classes, f"data.root: {paths[3]}"),
        num_classes=num_classes,
    )


def _idx_path(root: Path, stem: str) -> Path:
    for path in (root / stem, root / f"{stem}.gz"):
        if path.is_file():
            return path
    raise UserError(f"data.root: {root} has no {stem}(.gz)")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: magic 0x0000_08_<ndim>, big-endian uint32 dims, data."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":  # gzip magic; IDX files start with two zero bytes
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"data.root: {path} is truncated or corrupt ({error})") from None
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes((0, 0, 0x08, ndim)):
        raise UserError(f"data.root: {path} is not an IDX file of {ndim}-D unsigned bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) - header != math.prod(dims):
        raise UserError(
            f"data.root: {path} is truncated or corrupt: header says {dims} "
            f"({math.prod(dims)} bytes), file holds {len(data) - header}"
        )
    # A view on the decompressed bytes, no copy; load_data copies while normalising.
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


# --- CIFAR python pickles -----------------------------------------------------------------------


def read_cifar(
    folder: Path, train: list[str], test: list[str], label_key: bytes, num_classes: int
) -> RawData:
    """Official CIFAR python batches in `folder`: dicts with b"data" (N, 3072) and labels."""
    x_train, y_train = _cifar_batches(folder, train, label_key, num_classes)
    x_test, y_test = _cifar_batches(folder, test, label_key, num_classes)
    return RawData(x_train, y_train, x_test, y_test, num_classes)


def _cifar_batches(
    folder: Path, names: list[str], label_key: bytes, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise UserError(f"data.root: {folder} has no {name}")
        try:
            with path.open("rb") as file:
                # CIFAR's official format is a pickle, and unpickling can run code: data.root
                # must be a folder you trust. Corrupt pickles raise nearly any exception type.
                batch = pickle.load(file, encoding="bytes")
            data, labels = np.asarray(batch[b"data"]), batch[label_key]
        except Exception as error:
            raise UserError(f"data.root: {path} is not a CIFAR batch ({error!r})") from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise UserError(
                f"data.root: {path} data is {data.dtype} {data.shape}, not uint8 (N, 3072)"
            )
        labels = check_labels(labels, num_classes, f"data.root: {path}")
        _check_lengths(data, labels, f"data.root: {path}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


# --- .npz ---------------------------------------------------------------------------------------


def read_npz(path: Path) -> RawData:
    """x, y and optional x_test, y_test from a .npz; labels 0..K-1 give K = max(y) + 1."""
    if not path.is_file():
        raise UserError(f"data.root: {path} is not a file")
    try:
        archive = np.load(path, allow_pickle=False)  # no pickles: a data file must not run code
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise UserError(f"data.root: {path} is a .npy array, not a .npz archive")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise UserError(f"data.root: {path} is not a readable .npz file ({error})") from None
    for key in ("x", "y"):
        if key not in arrays:
            found = ", ".join(sorted(arrays)) or "nothing"
            raise UserError(f"data.root: {path} has no array {key!r} (found: {found})")
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise UserError(f"data.root: {path} has {have!r} but no {lack!r}")

    x = _npz_images(arrays["x"], f"data.root: {path} array 'x'")
    y = arrays["y"]
    if y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"data.root: {path} array 'y' must hold integer labels, got {y.dtype}")
    num_classes = int(y.max()) + 1
    y = check_labels(y, num_classes, f"data.root: {path} array 'y'")
    _check_lengths(x, y, f"data.root: {path} arrays 'x' and 'y'")
    if "x_test" not in arrays:
        return RawData(x, y, None, None, num_classes)
    x_test = _npz_images(arrays["x_test"], f"data.root: {path} array 'x_test'")
    y_test = check_labels(arrays["y_test"], num_classes, f"data.root: {path} array 'y_test'")
    _check_lengths(x_test, y_test, f"data.root: {path} arrays 'x_test' and 'y_test'")
    if x_test.shape[1:] != x.shape[1:] or x_test.dtype != x.dtype:
        raise UserError(
            f"data.root: {path} array 'x_test' is {x_test.dtype} {x_test.shape[1:]} per example "
            f"but 'x' is {x.dtype} {x.shape[1:]}"
        )
    return RawData(x, y, x_test, y_test, num_classes)


def _npz_images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    elif x.ndim != 4 or x.shape[1] not in (1, 3):
        raise UserError(
            f"{where} has shape {x.shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) "
            "with C 1 or 3"
        )
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"{where} is {x.dtype}; expected uint8 (0..255) or float")
    x = np.ascontiguousarray(x, dtype=np.float32)
    # A single NaN would make the channel statistics, and so every input, NaN.
    if not np.isfinite(x).all():
        raise UserError(f"{where} holds NaN or infinite values")
    return x
