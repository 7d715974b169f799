"""Image folders: class subfolders of PNG/JPEG files, decoded once into a cached uint8 array.

Layouts (``root`` is ``data.root``):

- ``root/train/<class>/…`` with optional ``root/val/<class>/…`` and ``root/test/<class>/…``;
- ``root/<class>/…``: one folder, its validation split carved by ``data.val_fraction``.

Classes are the train folder's subfolder names in sorted order (label 0 is the first); files are
found recursively inside each class folder; other files (README, .DS_Store) are ignored, as
torchvision's ``ImageFolder`` ignores them. Every image is converted to RGB or grayscale and
resized (squashed, antialiased) to ``image_size`` × ``image_size``.

Decoding thousands of images takes seconds to minutes, so the arrays are cached under
``<cache_dir>/image_folder/`` keyed by the folder's listing: every file's relative path, size
and modification time (ns), plus the decoding options. That is rsync's and make's quick check:
a stat per file, no read, so an unchanged folder opens in milliseconds, while an added, removed,
renamed, rewritten or touched file changes the key. What it misses is a rewrite that keeps both
size and mtime (``touch -r`` after editing); hashing every file would catch that at the price of
reading the whole folder on every run. The study itself stores a hash of the decoded arrays
(``Data.identity``), so a resumed search still refuses data that differs from its own.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

from autostudent.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")
# Bump when decoding changes (resampling filter, colour conversion): old entries become misses.
_READER_VERSION = 1


@dataclass(frozen=True, eq=False)
class ImageSplits:
    """Decoded splits: x uint8 (N, C, H, W), y int64; val/test None when the folder has none."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: tuple[str, ...]
    skipped: tuple[str, ...]  # bad files left out (relative to the root), with skip_bad_files


def read_image_folder(
    root: Path,
    *,
    image_size: int = 32,
    channels: int = 3,
    skip_bad_files: bool = False,
    cache_dir: Path | None = None,
) -> ImageSplits:
    """The folder's splits, from the cache when its listing is unchanged."""
    if not root.is_dir():
        raise UserError(f"data.root: {root} is not a folder")
    if channels not in (1, 3):
        raise UserError(f"data.channels: must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 4:
        raise UserError(f"data.image_size: must be an integer ≥ 4, got {image_size!r}")
    files, classes = _listing(root)
    key = _key(root, files, image_size, channels, skip_bad_files)
    path = None if cache_dir is None else cache_dir / "image_folder" / f"{key}.npz"
    if path is not None and path.is_file():
        cached = _read_cache(path)
        if cached is not None:
            return cached
    splits = _decode(root, files, classes, image_size, channels, skip_bad_files)
    if path is not None:
        _write_cache(path, splits)
    return splits


class _File(NamedTuple):
    path: str
    size: int
    mtime_ns: int


def _image_files(folder: Path) -> list[_File]:
    """The images below ``folder`` (recursively, hidden entries skipped) sorted by path, with
    one stat each (os.scandir: pathlib's rglob + relative_to cost ~1 ms a file on a busy CPU)."""
    found = []
    stack = [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    stack.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in EXTENSIONS and entry.is_file():
                    st = entry.stat()
                    found.append(_File(entry.path, st.st_size, st.st_mtime_ns))
    return sorted(found)


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


Listing = dict[str, list[tuple[_File, int]]]  # split -> (file, label) in a fixed order


def _listing(root: Path) -> tuple[Listing, tuple[str, ...]]:
    """Every split's files and labels; and the class names."""
    split_roots = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if "train" not in split_roots:
        if split_roots:
            raise UserError(
                f"data.root: {root} has {'/'.join(split_roots)}/ but no train/ folder "
                "(give train/ with optional val/ and test/, or class folders directly)"
            )
        split_roots = {"train": root}
    train_classes = _class_folders(split_roots["train"])
    where = split_roots["train"]
    if len(train_classes) < 2:
        raise UserError(
            f"data.root: {where} has {len(train_classes)} class folder(s); an image folder needs "
            "one subfolder per class, at least two"
        )
    classes = tuple(p.name for p in train_classes)
    label = {name: i for i, name in enumerate(classes)}
    files: Listing = {}
    for split, folder in split_roots.items():
        rows: list[tuple[_File, int]] = []
        for class_dir in _class_folders(folder):
            if class_dir.name not in label:
                raise UserError(
                    f"data.root: {class_dir} is a class that {where} does not have "
                    f"(classes: {', '.join(classes)})"
                )
            found = _image_files(class_dir)
            if not found and split == "train":
                raise UserError(f"data.root: {class_dir} holds no {'/'.join(EXTENSIONS)} images")
            rows += [(p, label[class_dir.name]) for p in found]
        if not rows:
            raise UserError(f"data.root: {folder} holds no {'/'.join(EXTENSIONS)} images")
        files[split] = rows
    return files, classes


def _key(root: Path, files: Listing, image_size: int, channels: int, skip_bad_files: bool) -> str:
    digest = hashlib.sha256(repr((_READER_VERSION, image_size, channels, skip_bad_files)).encode())
    for split, rows in files.items():
        for file, label in rows:
            name = _relative(root, file.path)
            digest.update(f"{split}\0{name}\0{label}\0{file.size}\0{file.mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _relative(root: Path, path: str) -> str:
    return os.path.relpath(path, root)


def _decode(
    root: Path,
    files: Listing,
    classes: tuple[str, ...],
    image_size: int,
    channels: int,
    skip_bad_files: bool,
) -> ImageSplits:
    mode = "RGB" if channels == 3 else "L"
    x: dict[str, np.ndarray] = {}
    y: dict[str, np.ndarray] = {}
    bad: list[tuple[str, str]] = []
    for split, rows in files.items():
        images = np.empty((len(rows), image_size, image_size, channels), np.uint8)
        labels = np.empty(len(rows), np.int64)
        n = 0
        for file, label in rows:
            try:
                images[n] = _load(file.path, mode, image_size, channels)
            except Exception as exc:  # Pillow raises many types for damaged files
                bad.append((_relative(root, file.path), _reason(exc)))
                continue
            labels[n] = label
            n += 1
        x[split] = np.ascontiguousarray(images[:n].transpose(0, 3, 1, 2))
        y[split] = labels[:n]
    if bad and not skip_bad_files:
        more = f" (and {len(bad) - 1} more bad files)" if len(bad) > 1 else ""
        raise UserError(
            f"data.root: {root / bad[0][0]} is not a readable PNG/JPEG image ({bad[0][1]}){more}; "
            "fix or remove it, or set data.skip_bad_files: true to leave bad files out"
        )
    for split, labels in y.items():
        if split == "train" and len(labels) == 0:
            raise UserError(f"data.root: every image of {root} {split} split is unreadable")
    return ImageSplits(x, y, classes, tuple(name for name, _ in bad))


def _load(path: str, mode: str, size: int, channels: int) -> np.ndarray:
    with warnings.catch_warnings():
        # A palette PNG with transparency warns on conversion; its colours are what we want.
        warnings.simplefilter("ignore", UserWarning)
        with Image.open(path) as img:
            img.load()  # Image.open is lazy: a truncated file fails here, not later
            img = ImageOps.exif_transpose(img)  # a camera's "rotate me" tag, applied
            if img.mode in ("P", "PA", "LA") or "transparency" in img.info:
                img = img.convert("RGBA")
            img = img.convert(mode)
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    return pixels.reshape(size, size, channels)


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _read_cache(path: Path) -> ImageSplits | None:
    """The cached splits, or None when the entry is unreadable (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        x = {s: arrays[f"x_{s}"] for s in SPLITS if f"x_{s}" in arrays}
        y = {s: arrays[f"y_{s}"] for s in SPLITS if f"y_{s}" in arrays}
        classes = tuple(str(c) for c in arrays["classes"])
        skipped = tuple(str(s) for s in arrays["skipped"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    if "x_train" not in arrays or set(x) != set(y):
        return None
    return ImageSplits(x, y, classes, skipped)


def _write_cache(path: Path, splits: ImageSplits) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    arrays = {f"x_{s}": v for s, v in splits.x.items()}
    arrays.update({f"y_{s}": v for s, v in splits.y.items()})
    try:
        np.savez(
            tmp,
            classes=np.array(splits.classes, dtype=str),
            skipped=np.array(splits.skipped, dtype=str),
            **arrays,
        )
        tmp.replace(path)  # atomic: a reader sees the whole entry or none
    finally:
        tmp.unlink(missing_ok=True)
