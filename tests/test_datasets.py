"""Datasets: real Fashion-MNIST from Debian's package, sklearn digits, and tiny synthetic files."""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autostudent.datasets import DATASETS, Data, load_data
from autostudent.errors import UserError

IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def user_error(call: Callable[[], object], *parts: str) -> str:
    """Assert `call` raises a one-line UserError mentioning every part; return the message."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def denormalise(data: Data, x: np.ndarray) -> np.ndarray:
    return x * np.array(data.std)[:, None, None] + np.array(data.mean)[:, None, None]


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes((0, 0, 0x08, array.ndim)) + np.array(array.shape, ">u4").tobytes()
    content = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)


def idx_folder(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    """A tiny MNIST-style folder of 4x4 images, mixing plain and gzipped files."""
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(root / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 4, 4)))
    write_idx(root / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    write_idx(root / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 4, 4)))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)
    return root


def indexed_npz(path: Path, n: int = 1000, classes: int = 5) -> Path:
    """Example i is an image filled with i and labelled i % classes, so splits can be traced."""
    x = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, 4, 4))
    np.savez(path, x=x, y=np.arange(n) % classes)
    return path


def ids(data: Data, x: np.ndarray) -> np.ndarray:
    return np.rint(denormalise(data, x)[:, 0, 0, 0]).astype(np.int64)


# --- Fashion-MNIST (real data) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion() -> Data:
    return load_data("fashion-mnist")


def test_fashion_mnist_shapes_and_counts(fashion: Data) -> None:
    assert fashion.input_shape == (1, 28, 28)
    assert fashion.num_classes == 10
    assert (len(fashion.x_train), len(fashion.x_val)) == (54000, 6000)
    assert len(fashion.y_train) == 54000 and len(fashion.y_val) == 6000
    assert fashion.x_test is not None and fashion.y_test is not None
    assert fashion.x_test.shape == (10000, 1, 28, 28) and len(fashion.y_test) == 10000
    assert fashion.x_train.dtype == np.float32 and fashion.y_train.dtype == np.int64
    # Fashion-MNIST is balanced: train + val must hold exactly the 6000 examples of each class.
    counts = np.bincount(np.concatenate([fashion.y_train, fashion.y_val]), minlength=10)
    assert counts.tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10


def test_fashion_mnist_normalisation(fashion: Data) -> None:
    assert fashion.mean == pytest.approx((0.2860,), abs=1e-4)
    assert fashion.std == pytest.approx((0.3530,), abs=1e-4)
    # The val split is a random sample of the training data, so it is normalised to about 0, 1.
    assert float(fashion.x_val.mean(dtype=np.float64)) == pytest.approx(0.0, abs=0.02)
    assert float(fashion.x_val.std(dtype=np.float64)) == pytest.approx(1.0, abs=0.02)
    pixels = denormalise(fashion, fashion.x_test)
    assert pixels.min() == pytest.approx(0.0, abs=1e-5)
    assert pixels.max() == pytest.approx(1.0, abs=1e-5)


def test_fashion_mnist_subset_is_balanced_and_leaves_val_alone(fashion: Data) -> None:
    small = load_data("fashion-mnist", train_subset=1000)
    assert len(small.x_train) == 1000
    share = np.bincount(fashion.y_train) * 1000 / len(fashion.y_train)
    assert np.all(np.abs(np.bincount(small.y_train, minlength=10) - share) < 1)
    np.testing.assert_array_equal(small.x_val, fashion.x_val)
    assert small.mean == fashion.mean and small.identity != fashion.identity


def test_fashion_mnist_env_var_comes_before_debian(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSTUDENT_FASHION_MNIST", str(idx_folder(tmp_path / "f")))
    data = load_data("fashion-mnist")
    assert len(data.y_train) + len(data.y_val) == 20 and data.input_shape == (1, 4, 4)
    monkeypatch.setenv("AUTOSTUDENT_FASHION_MNIST", str(tmp_path / "missing"))
    user_error(lambda: load_data("fashion-mnist"), "$AUTOSTUDENT_FASHION_MNIST", "missing")


# --- Splits, subsets and identity (traceable synthetic data) ---------------------------------


def test_train_and_val_are_disjoint_cover_the_data_and_keep_labels(tmp_path: Path) -> None:
    data = load_data("npz", indexed_npz(tmp_path / "d.npz"), val_fraction=0.2, seed=3)
    train, val = ids(data, data.x_train), ids(data, data.x_val)
    assert len(val) == 200 and not set(train) & set(val)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(1000))
    np.testing.assert_array_equal(data.y_train, train % 5)
    np.testing.assert_array_equal(data.y_val, val % 5)
    assert data.x_test is None and data.y_test is None


def test_split_depends_on_seed_only(tmp_path: Path) -> None:
    path = indexed_npz(tmp_path / "d.npz")
    a, b, c = (load_data("npz", path, seed=seed) for seed in (0, 0, 1))
    np.testing.assert_array_equal(ids(a, a.x_val), ids(b, b.x_val))
    assert set(ids(a, a.x_val).tolist()) != set(ids(c, c.x_val).tolist())
    assert a.mean == c.mean and a.std == c.std  # stats come from the full training split


def test_train_subset_is_seeded_proportional_and_inside_train(tmp_path: Path) -> None:
    path = indexed_npz(tmp_path / "d.npz")
    full = load_data("npz", path, seed=2)
    a, b = (load_data("npz", path, seed=2, train_subset=101) for _ in range(2))
    other = load_data("npz", path, seed=5, train_subset=101)
    assert len(a.x_train) == 101
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(ids(a, a.x_train), ids(other, other.x_train))
    assert set(ids(a, a.x_train)) <= set(ids(full, full.x_train))
    np.testing.assert_array_equal(a.x_val, full.x_val)
    share = np.bincount(full.y_train) * 101 / len(full.y_train)
    assert np.all(np.abs(np.bincount(a.y_train) - share) < 1)


def test_identity_tracks_content_and_split_options(tmp_path: Path) -> None:
    path = indexed_npz(tmp_path / "d.npz")
    base = load_data("npz", path).identity
    assert load_data("npz", path).identity == base
    copy = tmp_path / "copy.npz"
    copy.write_bytes(path.read_bytes())
    assert load_data("npz", copy).identity == base  # content, not location
    others = {
        load_data("npz", path, seed=1).identity,
        load_data("npz", path, val_fraction=0.2).identity,
        load_data("npz", path, train_subset=500).identity,
        load_data("npz", indexed_npz(tmp_path / "e.npz", classes=4)).identity,
    }
    assert base not in others and len(others) == 4
    assert len(base) == 16 and int(base, 16) >= 0


# --- Other loaders -----------------------------------------------------------------------------


def test_registry_lists_the_datasets() -> None:
    assert DATASETS.names() == [
        "cifar10", "cifar100", "digits", "fashion-mnist", "image-folder", "mnist", "npz"
    ]  # fmt: skip
    user_error(lambda: load_data("imagenet"), "imagenet", "fashion-mnist", "digits")


def test_digits_loads_with_a_fixed_test_split() -> None:
    a, b = load_data("digits"), load_data("digits", seed=7)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert a.x_test is not None and b.x_test is not None
    assert len(a.x_test) == 359 and len(a.x_train) + len(a.x_val) + 359 == 1797
    np.testing.assert_array_equal(a.x_test, b.x_test)  # the test set must not move with the seed
    pixels = denormalise(a, a.x_train)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6 and pixels.max() > 0.99


def test_mnist_reads_idx_folder_and_requires_root(tmp_path: Path) -> None:
    data = load_data("mnist", idx_folder(tmp_path / "m"), val_fraction=0.25)
    assert (len(data.y_train), len(data.y_val), data.input_shape) == (15, 5, (1, 4, 4))
    assert data.y_test is not None and data.y_test.tolist() == list(range(10))
    user_error(lambda: load_data("mnist"), "data.root: required for mnist")


def test_npz_nhwc_uint8_round_trip_with_test_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (50, 6, 5, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (7, 6, 5, 3), dtype=np.uint8)
    y, y_test = rng.permutation(np.arange(50) % 4), np.array([0, 1, 2, 3, 0, 1, 2])
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)
    data = load_data("npz", path)
    assert data.input_shape == (3, 6, 5) and data.num_classes == 4
    assert data.mean == pytest.approx(tuple(x.mean(axis=(0, 1, 2)) / 255), abs=1e-9)
    assert data.std == pytest.approx(tuple(x.std(axis=(0, 1, 2)) / 255), abs=1e-9)
    assert data.x_test is not None and data.y_test is not None
    expected = x_test.transpose(0, 3, 1, 2) / 255
    np.testing.assert_allclose(denormalise(data, data.x_test), expected, atol=1e-5)
    np.testing.assert_array_equal(data.y_test, y_test)


@pytest.mark.parametrize(
    ("shape", "input_shape"), [((9, 5, 4), (1, 5, 4)), ((9, 3, 5, 4), (3, 5, 4))]
)
def test_npz_layouts(tmp_path: Path, shape: tuple[int, ...], input_shape: tuple[int, ...]) -> None:
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random(shape), y=np.arange(9) % 3)
    data = load_data("npz", tmp_path / "d.npz")
    assert data.input_shape == input_shape and data.x_train.dtype == np.float32


def write_cifar(
    folder: Path, files: dict[str, int], label_key: bytes, classes: int, first_label: int = 0
) -> None:
    """Batches in the official layout: dict of bytes keys, data uint8 (N, 3072), list labels."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in files.items():
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: [first_label + i % classes for i in range(n)],
            b"filenames": [f"{i}.png".encode() for i in range(n)],
        }
        with (folder / name).open("wb") as file:
            pickle.dump(batch, file, protocol=2)


def test_cifar10_reads_official_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    names = {f"data_batch_{i}": 4 for i in range(1, 6)} | {"test_batch": 6}
    write_cifar(folder, names, b"labels", 10)
    data = load_data("cifar10", tmp_path)  # the parent of the official folder works too
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert len(data.y_train) + len(data.y_val) == 20
    with (folder / "test_batch").open("rb") as file:
        raw = pickle.load(file, encoding="bytes")
    # Each row is 1024 red, then 1024 green, then 1024 blue values, each plane row-major.
    planes = raw[b"data"].reshape(-1, 3, 32, 32) / 255
    assert data.x_test is not None and data.y_test is not None
    np.testing.assert_allclose(denormalise(data, data.x_test), planes, atol=1e-5)
    assert data.y_test.tolist() == raw[b"labels"]


def test_cifar100_reads_fine_labels(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c", {"train": 20, "test": 5}, b"fine_labels", 100)
    data = load_data("cifar100", tmp_path / "c")
    assert data.num_classes == 100 and data.y_test is not None
    assert data.y_test.tolist() == [0, 1, 2, 3, 4]


# --- Bad inputs --------------------------------------------------------------------------------


def test_bad_split_options(tmp_path: Path) -> None:
    path = indexed_npz(tmp_path / "d.npz", n=30)
    user_error(lambda: load_data("npz", path, val_fraction=0), "data.val_fraction")
    user_error(lambda: load_data("npz", path, val_fraction=1.0), "data.val_fraction")
    user_error(lambda: load_data("npz", path, val_fraction="a"), "data.val_fraction")  # type: ignore[arg-type]
    user_error(lambda: load_data("npz", path, val_fraction=0.01), "data.val_fraction", "30")
    user_error(lambda: load_data("npz", path, seed=-1), "data.seed")
    user_error(lambda: load_data("npz", path, train_subset=0), "data.train_subset")
    user_error(lambda: load_data("npz", path, train_subset=28), "data.train_subset", "27")


def test_bad_idx_folders(tmp_path: Path) -> None:
    user_error(lambda: load_data("fashion-mnist", tmp_path / "nope"), "data.root", "nope")
    root = idx_folder(tmp_path / "m")
    (root / "t10k-images-idx3-ubyte").unlink()
    user_error(lambda: load_data("mnist", root), "data.root", "t10k-images-idx3-ubyte(.gz)")

    root = idx_folder(tmp_path / "truncated")
    path = root / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    user_error(lambda: load_data("mnist", root), str(path), "truncated")

    root = idx_folder(tmp_path / "cut-gz")
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    user_error(lambda: load_data("mnist", root), str(path), "truncated")

    root = idx_folder(tmp_path / "magic")
    path = root / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + path.read_bytes()[4:])
    user_error(lambda: load_data("mnist", root), str(path), "not an IDX file")

    root = idx_folder(tmp_path / "counts")
    write_idx(root / "train-labels-idx1-ubyte", np.arange(19) % 10)
    user_error(
        lambda: load_data("mnist", root), str(root), "train split has 20 images but 19 labels"
    )

    root = idx_folder(tmp_path / "labels")
    write_idx(root / "train-labels-idx1-ubyte", np.arange(20))
    user_error(lambda: load_data("mnist", root), "train-labels-idx1-ubyte", "outside 0..9")


@pytest.mark.parametrize(
    ("arrays", "parts"),
    [
        ({"x": np.zeros((4, 3, 3))}, ["no array 'y'", "found: x"]),
        ({"y": np.zeros(4, int)}, ["no array 'x'"]),
        ({"x": np.zeros((4, 3, 3)), "y": np.array([0, 1, -1, 2])}, ["'y'", "outside"]),
        ({"x": np.zeros((4, 3, 3)), "y": np.array([0.0, 1, 0, 1])}, ["'y'", "integer"]),
        ({"x": np.zeros((4, 3, 3)), "y": np.array([0, 1, 0])}, ["'x' and 'y'", "4 images"]),
        ({"x": np.zeros((4, 5, 5, 5)), "y": np.arange(4)}, ["'x'", "shape (4, 5, 5, 5)"]),
        ({"x": np.zeros((4, 3, 3), np.int32), "y": np.arange(4)}, ["'x'", "int32"]),
        ({"x": np.full((4, 3, 3), np.nan), "y": np.arange(4)}, ["'x'", "NaN"]),
        (
            {"x": np.zeros((4, 3, 3)), "y": np.arange(4), "x_test": np.zeros((2, 3, 3))},
            ["'x_test' but no 'y_test'"],
        ),
        (
            {
                "x": np.zeros((4, 3, 3)),
                "y": np.arange(4),
                "x_test": np.zeros((1, 3, 3)),
                "y_test": np.array([4]),
            },
            ["'y_test'", "outside 0..3"],
        ),
        (
            {
                "x": np.zeros((4, 3, 3)),
                "y": np.arange(4),
                "x_test": np.zeros((1, 3, 4)),
                "y_test": np.array([1]),
            },
            ["'x_test'", "per example"],
        ),
    ],
)
def test_bad_npz(tmp_path: Path, arrays: dict[str, np.ndarray], parts: list[str]) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    user_error(lambda: load_data("npz", path), "data.root", str(path), *parts)


def test_bad_npz_files(tmp_path: Path) -> None:
    user_error(lambda: load_data("npz"), "data.root: required for npz")
    user_error(lambda: load_data("npz", tmp_path / "none.npz"), "none.npz", "not a file")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    user_error(lambda: load_data("npz", tmp_path / "junk.npz"), "junk.npz", "not a readable")
    np.save(tmp_path / "a.npy", np.zeros(3))
    user_error(lambda: load_data("npz", tmp_path / "a.npy"), "a.npy", ".npy array")


def test_bad_cifar_folders(tmp_path: Path) -> None:
    user_error(lambda: load_data("cifar10"), "data.root: required for cifar10")
    user_error(lambda: load_data("cifar100", tmp_path / "nope"), "data.root", "nope")
    folder = tmp_path / "c10"
    write_cifar(folder, {f"data_batch_{i}": 2 for i in range(1, 5)}, b"labels", 10)
    user_error(lambda: load_data("cifar10", folder), str(folder), "no data_batch_5")

    write_cifar(tmp_path / "c100", {"train": 3, "test": 3}, b"labels", 100)
    user_error(lambda: load_data("cifar100", tmp_path / "c100"), "train", "not a CIFAR batch")
    (tmp_path / "c100" / "train").write_bytes(b"\x80\x02garbage")
    user_error(lambda: load_data("cifar100", tmp_path / "c100"), "train", "not a CIFAR batch")

    write_cifar(tmp_path / "big", {"train": 3, "test": 3}, b"fine_labels", 100, first_label=99)
    user_error(lambda: load_data("cifar100", tmp_path / "big"), "train", "outside 0..99")


def test_digits_takes_no_root(tmp_path: Path) -> None:
    user_error(lambda: load_data("digits", tmp_path), "data.root", "digits")
