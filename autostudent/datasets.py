"""Datasets found by name: a loader reads raw arrays, `load_data` makes the normalised splits.

Adding a dataset is one function decorated with ``@DATASETS.register("name")`` that takes the
``data.root`` path (or None) and returns a `RawData`. Its keyword-only parameters are the
dataset's own options (``data.image_size`` for ``image-folder``): `load_data` passes the ones
the config sets and refuses the ones the dataset does not take; a ``cache_dir`` parameter
receives the study's cache folder. Normalisation, the validation split, the training subset and
the cache identity are shared, so every dataset gets them the same way.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autostudent._dataset_readers import RawData, read_cifar, read_idx_folder, read_npz
from autostudent.errors import UserError
from autostudent.registry import Registry

# Bump when the way raw arrays become `Data` changes, so cached teacher outputs keyed by
# `Data.identity` are not reused for differently prepared inputs.
_IDENTITY_VERSION = 1
_FASHION_MNIST_ENV = "AUTOSTUDENT_FASHION_MNIST"
_FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # Debian dataset-fashion-mnist
_DIGITS_TEST_SEED = 0
_DIGITS_TEST_FRACTION = 0.2
_STATS_CHUNK = 4096  # examples per float64 chunk when computing channel stats (~25 MB at 28x28)

__all__ = ["DATASETS", "Data", "Loader", "RawData", "UnitTestSplit", "load_data", "unit_test_split"]


Loader = Callable[..., RawData]  # (root, *, option=value, ...) -> RawData
DATASETS: Registry[Loader] = Registry("dataset")


# eq=False: dataclass equality would compare arrays element-wise and fail on `bool(array)`.
@dataclass(frozen=True, eq=False)
class Data:
    """Normalised splits of one dataset: x float32 (N, C, H, W), y int64 (N,)."""

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    x_test: np.ndarray | None = field(repr=False)  # for final reports only, never for search
    y_test: np.ndarray | None = field(repr=False)
    num_classes: int
    # Per channel, of pixels in [0, 1], over the full training split before the val split, so
    # the statistics do not depend on the split seed.
    mean: tuple[float, ...]
    std: tuple[float, ...]
    identity: str  # cache key for teacher outputs: raw content + name + split options
    classes: tuple[str, ...] | None = None  # class names by label, when the files name them
    skipped: tuple[str, ...] = ()  # unreadable files left out (data.skip_bad_files)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


def load_data(
    name: str,
    root: str | Path | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    train_subset: int | None = None,
    options: Mapping[str, Any] | None = None,
    cache_dir: Path | None = None,
) -> Data:
    """Load dataset `name` from `root`, normalise it and carve a seeded validation split.

    `train_subset` keeps a seeded, class-proportional subset of the training examples left
    after the validation split; the validation split itself does not depend on it. A dataset
    with a validation split of its own (an image folder's val/) keeps it: `val_fraction` and
    `seed` then only matter through `train_subset`. `options` are the dataset's own settings.
    """
    val_fraction, seed = _check_options(val_fraction, seed, train_subset)
    raw = _read(name, root, options, cache_dir)
    rng = np.random.default_rng(seed)
    if raw.x_val is not None and raw.y_val is not None:
        train_idx = np.arange(len(raw.y_train))
        x_val, y_val = raw.x_val, raw.y_val
        if len(y_val) == 0:
            raise UserError(f"data.root: {name}'s validation split holds no readable example")
    else:
        n = len(raw.y_train)
        n_val = round(n * val_fraction)
        if not 0 < n_val < n:
            raise UserError(
                f"data.val_fraction: {val_fraction} of {n} training examples leaves {n_val} for "
                "validation; both the train and the val split need at least one"
            )
        order = rng.permutation(n)
        # Sorted so the splits keep the file order: reads are sequential, order means nothing.
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        x_val, y_val = raw.x_train[val_idx], raw.y_train[val_idx]
    if train_subset is not None:
        train_idx = _stratified_subset(raw.y_train, train_idx, train_subset, rng)

    mean, std = _channel_stats(raw.x_train)
    scale = 255.0 if raw.x_train.dtype == np.uint8 else 1.0

    def normalise(x: np.ndarray) -> np.ndarray:
        # Subtract and divide in raw units so uint8 data becomes float32 in one copy.
        out = x.astype(np.float32)
        out -= (mean * scale).astype(np.float32)[:, None, None]
        out /= (std * scale).astype(np.float32)[:, None, None]
        return out

    has_test = raw.x_test is not None and raw.y_test is not None
    return Data(
        name=name,
        x_train=normalise(raw.x_train[train_idx]),
        y_train=raw.y_train[train_idx],
        x_val=normalise(x_val),
        y_val=y_val,
        x_test=normalise(raw.x_test) if has_test else None,
        y_test=raw.y_test if has_test else None,
        num_classes=raw.num_classes,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        identity=_identity(raw, name, val_fraction, seed, train_subset),
        classes=raw.classes,
        skipped=raw.skipped,
    )


def _read(
    name: str,
    root: str | Path | None,
    options: Mapping[str, Any] | None,
    cache_dir: Path | None,
) -> RawData:
    """The dataset's raw arrays, its options checked against what its loader takes."""
    loader = DATASETS.get(name)
    takes = inspect.signature(loader).parameters
    kwargs = dict(options or {})
    for key in kwargs:
        if key not in takes or key in ("root", "cache_dir"):
            raise UserError(f"data.{key}: {name} takes no {key}")
    if "cache_dir" in takes:
        from autostudent.teacher_outputs import default_cache_dir

        kwargs["cache_dir"] = cache_dir or default_cache_dir()
    return loader(None if root is None else Path(root).expanduser(), **kwargs)


@dataclass(frozen=True, eq=False)
class UnitTestSplit:
    """The test split as the dataset files hold it, scaled to [0, 1] but not normalised: what
    an exported student (normalisation inside) takes."""

    x: np.ndarray = field(repr=False)  # float32 (N, C, H, W) in [0, 1]
    y: np.ndarray = field(repr=False)
    scale: str  # how the stored pixels became [0, 1]


def unit_test_split(
    name: str,
    root: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    cache_dir: Path | None = None,
) -> UnitTestSplit | None:
    """The dataset's test split for an exported student; None when it has none."""
    raw = _read(name, root, options, cache_dir)
    if raw.x_test is None or raw.y_test is None:
        return None
    x = raw.x_test.astype(np.float32)
    if raw.x_test.dtype == np.uint8:
        x /= 255.0
        return UnitTestSplit(x, raw.y_test, "8-bit pixels ÷ 255")
    return UnitTestSplit(x, raw.y_test, "as the loader reads them (already in [0, 1])")


def _check_options(val_fraction: Any, seed: Any, train_subset: Any) -> tuple[float, int]:
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float):
        raise UserError(f"data.val_fraction: must be a number, got {val_fraction!r}")
    if not 0 < val_fraction < 1:
        raise UserError(f"data.val_fraction: must be strictly between 0 and 1, got {val_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"data.seed: must be a non-negative integer, got {seed!r}")
    if train_subset is not None and (
        isinstance(train_subset, bool) or not isinstance(train_subset, int) or train_subset < 1
    ):
        raise UserError(f"data.train_subset: must be a positive integer, got {train_subset!r}")
    return float(val_fraction), int(seed)


def _stratified_subset(
    y: np.ndarray, idx: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    if size > len(idx):
        raise UserError(
            f"data.train_subset: {size} is more than the {len(idx)} training examples left "
            "after the validation split"
        )
    labels = y[idx]
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(idx)
    quota = np.floor(exact).astype(np.int64)
    # Give the examples lost to rounding to the classes that lost the most, so every class keeps
    # its share of the training data to within one example.
    quota[np.argsort(quota - exact, kind="stable")[: size - int(quota.sum())]] += 1
    picked = [
        rng.choice(idx[labels == c], size=int(q), replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of pixels scaled to [0, 1] (uint8) or as stored (float)."""
    total = np.zeros(x.shape[1])
    squares = np.zeros(x.shape[1])
    # Chunked in float64: a float64 copy of all of Fashion-MNIST would be ~380 MB.
    for start in range(0, len(x), _STATS_CHUNK):
        chunk = x[start : start + _STATS_CHUNK].astype(np.float64)
        total += chunk.sum(axis=(0, 2, 3))
        squares += np.square(chunk).sum(axis=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    mean, std = mean / scale, std / scale
    # A constant channel carries no information; dividing by 1 keeps it finite instead of NaN.
    std[std == 0] = 1.0
    return mean, std


def _identity(
    raw: RawData, name: str, val_fraction: float, seed: int, train_subset: int | None
) -> str:
    digest = hashlib.sha256()
    options = (_IDENTITY_VERSION, name, val_fraction, seed, train_subset, raw.num_classes)
    digest.update(repr(options).encode())
    arrays = [raw.x_train, raw.y_train, raw.x_test, raw.y_test]
    # Only datasets with a val split or class names of their own hash them: the identities of
    # the others (keys of existing teacher-output caches) stay what they were.
    if raw.x_val is not None:
        arrays += [raw.x_val, raw.y_val]
    if raw.classes is not None:
        digest.update(repr(raw.classes).encode())
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


def _require_root(root: Path | None, name: str) -> Path:
    if root is None:
        raise UserError(f"data.root: required for {name}")
    return root


@DATASETS.register("fashion-mnist")
def fashion_mnist(root: Path | None) -> RawData:
    """Fashion-MNIST IDX files; without a root, $AUTOSTUDENT_FASHION_MNIST then Debian's copy."""
    if root is None:
        env = os.environ.get(_FASHION_MNIST_ENV)
        if env:
            root = Path(env).expanduser()
            if not root.is_dir():
                raise UserError(f"${_FASHION_MNIST_ENV}: {root} is not a folder")
        elif _FASHION_MNIST_DEBIAN.is_dir():
            root = _FASHION_MNIST_DEBIAN
        else:
            raise UserError(
                f"data.root: not set, ${_FASHION_MNIST_ENV} not set and no "
                f"{_FASHION_MNIST_DEBIAN} (apt install dataset-fashion-mnist, or set data.root)"
            )
    return read_idx_folder(root)


@DATASETS.register("mnist")
def mnist(root: Path | None) -> RawData:
    """MNIST IDX files (same names as Fashion-MNIST); root required."""
    return read_idx_folder(_require_root(root, "mnist"))


@DATASETS.register("cifar10")
def cifar10(root: Path | None) -> RawData:
    """cifar-10-batches-py, or the folder holding it. Pickles: root must be trusted."""
    folder = _cifar_folder(_require_root(root, "cifar10"), "cifar-10-batches-py")
    train = [f"data_batch_{i}" for i in range(1, 6)]
    return read_cifar(folder, train, ["test_batch"], b"labels", 10)


@DATASETS.register("cifar100")
def cifar100(root: Path | None) -> RawData:
    """cifar-100-python (fine labels), or the folder holding it. Pickles: root must be trusted."""
    folder = _cifar_folder(_require_root(root, "cifar100"), "cifar-100-python")
    return read_cifar(folder, ["train"], ["test"], b"fine_labels", 100)


def _cifar_folder(root: Path, official: str) -> Path:
    # The official tarball unpacks into `official`; accept its parent too.
    if (root / official).is_dir():
        return root / official
    if not root.is_dir():
        raise UserError(f"data.root: {root} is not a folder")
    return root


@DATASETS.register("digits")
def digits(root: Path | None) -> RawData:
    """scikit-learn's bundled 8x8 digits; a fixed 20% test split (it has no official one)."""
    if root is not None:
        raise UserError("data.root: digits ships with scikit-learn and takes no root")
    from sklearn.datasets import load_digits  # lazy: slow import, and only digits needs it

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    # A fixed seed, not the split seed: the test set stands in for an official one, so it must
    # stay the same across studies with different seeds.
    order = np.random.default_rng(_DIGITS_TEST_SEED).permutation(len(y))
    n_test = round(len(y) * _DIGITS_TEST_FRACTION)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return RawData(x[train], y[train], x[test], y[test], 10)


@DATASETS.register("npz")
def npz(root: Path | None) -> RawData:
    """A .npz file with x, y and optional x_test, y_test (see `read_npz`)."""
    return read_npz(_require_root(root, "npz"))


@DATASETS.register("image-folder")
def image_folder(
    root: Path | None,
    *,
    image_size: int = 32,
    channels: int = 3,
    skip_bad_files: bool = False,
    cache_dir: Path | None = None,
) -> RawData:
    """Class subfolders of PNG/JPEG images (train/, optional val/ and test/; or the classes
    directly), resized to image_size; decoded once and cached (see `_image_folder`)."""
    from autostudent._image_folder import read_image_folder  # Pillow: only this dataset

    splits = read_image_folder(
        _require_root(root, "image-folder"),
        image_size=image_size,
        channels=channels,
        skip_bad_files=skip_bad_files,
        cache_dir=cache_dir,
    )
    x, y = splits.x, splits.y
    has_test = "test" in y and len(y["test"]) > 0  # every test file skipped: no test split
    return RawData(
        x["train"],
        y["train"],
        x["test"] if has_test else None,
        y["test"] if has_test else None,
        len(splits.classes),
        x_val=x.get("val"),
        y_val=y.get("val"),
        classes=splits.classes,
        skipped=splits.skipped,
    )
