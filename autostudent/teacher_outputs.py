"""Teacher outputs computed once per (teacher file, data split) and kept on disk.

The teacher is fixed, so running it inside every trial is pure waste: here it runs once over
the training split, and every later trial, study or process with the same teacher file and the
same data identity reads the stored logits (and penultimate features, for relational losses).
A changed teacher file has a new hash, hence a new cache entry. Entries are written atomically
and carry a SHA-256 of their tensors: a corrupt, truncated or half-written file is detected on
read and rebuilt (the reason is kept in ``TeacherOutputs.rebuilt``).

Consistent teaching (Beyer et al. 2022, "a good teacher is patient and consistent"): with data
augmentation, the student's target must be the teacher's output on the very image the student
sees. Asked for ``views=K``, the cache also holds the teacher's outputs on K fixed augmented
views of every training image (``TeacherViews``). View v of image i is a crop offset and a
flip flag drawn once from the recipe's seed; only those three small numbers are stored, the
pixels are regenerated on the fly (``training.crop_flip``), and the teacher runs K times per
image once, never in a training step. Such an entry is keyed by the teacher, the data, the
recipe (padding, flip, fill, seed) and K.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from autostudent import killpoints
from autostudent.cache import default_cache_dir
from autostudent.datasets import Data
from autostudent.device import precision
from autostudent.processes import pid_alive
from autostudent.teacher import Teacher
from autostudent.training import crop_flip

CACHE_VERSION = 2  # 2: entries carry a checksum
VIEWS_VERSION = 1

# Datasets whose labels survive a horizontal flip (a mirrored shirt is a shirt; a mirrored
# digit is not a digit).
FLIP_INVARIANT = frozenset({"fashion-mnist", "cifar10", "cifar100"})


@dataclass(frozen=True)
class ViewRecipe:
    """How the K views of an image are made: a crop of the image padded by ``crop_pad`` pixels
    of value ``fill`` (per channel, normalised), mirrored half of the time when ``flip``."""

    k: int
    crop_pad: int
    flip: bool
    fill: tuple[float, ...]
    seed: int = 0

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "crop_pad": self.crop_pad,
            "flip": self.flip,
            "fill": [round(v, 6) for v in self.fill],
            "seed": self.seed,
        }

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def fill_tensor(self) -> torch.Tensor:
        return torch.tensor(self.fill, dtype=torch.float32)


def augmentation(data: Data) -> dict:
    """The crop-and-flip augmentation of this dataset's images: padding ~1/14 of the side, and a
    flip only where the labels allow it."""
    return {
        "crop_pad": max(1, round(data.input_shape[1] / 14)),
        "flip": data.name in FLIP_INVARIANT,
    }


def view_recipe(data: Data, k: int, seed: int = 0) -> ViewRecipe:
    """``augmentation(data)`` as K fixed views; padding with black (the normalised value of a
    0 pixel), the background of these images."""
    how = augmentation(data)
    fill = tuple(-m / s for m, s in zip(data.mean, data.std, strict=True))
    return ViewRecipe(k, how["crop_pad"], how["flip"], fill, seed)


@dataclass(frozen=True)
class TeacherViews:
    """The teacher's outputs on K fixed augmented views of every training image."""

    recipe: ViewRecipe
    dy: torch.Tensor  # (N, K) uint8 crop row offsets in [0, 2 * crop_pad]
    dx: torch.Tensor  # (N, K) uint8 crop column offsets
    flips: torch.Tensor  # (N, K) bool: view mirrored
    logits: torch.Tensor  # (N, K, classes)
    features: torch.Tensor | None  # (N, K, D), only when asked for (relational losses)
    path: Path
    rebuilt: str | None = None

    def images(self, x: torch.Tensor, idx: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
        """View ``view[j]`` of image ``idx[j]`` of ``x`` (normalised images), regenerated."""
        r = self.recipe
        i, v = idx.cpu(), view.cpu()
        return crop_flip(
            x[idx],
            self.dy[i, v],
            self.dx[i, v],
            self.flips[i, v] if r.flip else None,
            pad=r.crop_pad,
            fill=r.fill_tensor(),
        )


def draw_views(n: int, recipe: ViewRecipe) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (dy, dx, flips) of every view of ``n`` images: a pure function of the recipe."""
    gen = torch.Generator().manual_seed(recipe.seed)
    span = 2 * recipe.crop_pad + 1
    dy = torch.randint(0, span, (n, recipe.k), generator=gen).to(torch.uint8)
    dx = torch.randint(0, span, (n, recipe.k), generator=gen).to(torch.uint8)
    flips = torch.rand(n, recipe.k, generator=gen) < 0.5
    if not recipe.flip:
        flips.zero_()
    return dy, dx, flips


@dataclass(frozen=True)
class TeacherOutputs:
    logits: torch.Tensor  # (len(x_train), classes), aligned with Data.x_train
    features: torch.Tensor | None  # (len(x_train), D) or None when the teacher exposes none
    val_accuracy: float
    test_accuracy: float | None
    params: int
    path: Path
    rebuilt: str | None = None  # why an existing entry was not usable and was rebuilt
    views: TeacherViews | None = None  # outputs on K augmented views, when asked for


def cache_path(teacher: Teacher, data: Data, cache_dir: Path | None = None) -> Path:
    root = cache_dir or default_cache_dir()
    return root / "teacher_outputs" / f"v{CACHE_VERSION}-{teacher.identity[:20]}-{data.identity}.pt"


def views_path(
    teacher: Teacher,
    data: Data,
    recipe: ViewRecipe,
    features: bool,
    cache_dir: Path | None = None,
) -> Path:
    root = cache_dir or default_cache_dir()
    name = (
        f"views{VIEWS_VERSION}-{teacher.identity[:20]}-{data.identity}-k{recipe.k}-{recipe.key()}"
        + ("-f" if features else "")
    )
    return root / "teacher_outputs" / f"{name}.pt"


def teacher_outputs(
    teacher: Teacher,
    data: Data,
    cache_dir: Path | None = None,
    *,
    device: str = "cpu",
    batch_size: int = 512,
    views: int = 0,
    view_features: bool = False,
    view_seed: int = 0,
) -> TeacherOutputs:
    """Load the cached outputs, or compute and store them (atomically) when absent or damaged.
    With ``views=K`` > 0 also the outputs on K augmented views of each image (``TeacherViews``;
    with the teacher's features when ``view_features`` and the teacher exposes them)."""
    path = cache_path(teacher, data, cache_dir)
    outputs = None
    rebuilt = None
    if path.is_file():
        stored, rebuilt = _read(path, len(data.x_train))
        if rebuilt is None:
            outputs = _from_stored(stored, path)
    if outputs is None:
        stored = _compute(teacher, data, device, batch_size)
        stored["sha256"] = _checksum(stored)
        _store(path, stored)
        outputs = _from_stored(stored, path, rebuilt)
    if views < 1:
        return outputs
    recipe = view_recipe(data, views, view_seed)
    features = view_features and teacher.has_features
    vpath = views_path(teacher, data, recipe, features, cache_dir)
    why = None
    if vpath.is_file():
        stored, why = _read(vpath, len(data.x_train))
        if why is None and stored.get("recipe") != recipe.as_dict():
            why = "another view recipe"
        if why is None:
            return replace(outputs, views=_views_from_stored(stored, recipe, vpath))
    # batches of 256 in channels-last: twice the images per second of 512 on one CPU thread
    stored = _compute_views(teacher, data, recipe, features, device, min(batch_size, 256))
    stored["sha256"] = _checksum(stored)
    _store(vpath, stored)
    return replace(outputs, views=_views_from_stored(stored, recipe, vpath, why))


def _store(path: Path, stored: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    try:
        torch.save(stored, tmp)
        killpoints.reached("teacher_cache")  # the fault tests kill the driver mid-write here
        tmp.replace(path)  # atomic: concurrent writers leave one whole file, readers never see half
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no partial file
    _remove_orphans(path)


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
    for key in ("logits", "features", "dy", "dx", "flips"):
        if stored.get(key) is not None:
            digest.update(stored[key].contiguous().numpy().tobytes())
    scalars = ("recipe",) if "recipe" in stored else ("val_accuracy", "test_accuracy", "params")
    digest.update(repr([stored[k] for k in scalars]).encode())
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


def _views_from_stored(
    stored: dict, recipe: ViewRecipe, path: Path, rebuilt: str | None = None
) -> TeacherViews:
    return TeacherViews(
        recipe=recipe,
        dy=stored["dy"],
        dx=stored["dx"],
        flips=stored["flips"],
        logits=stored["logits"],
        features=stored.get("features"),
        path=path,
        rebuilt=rebuilt,
    )


@torch.inference_mode()
def _compute_views(
    teacher: Teacher, data: Data, recipe: ViewRecipe, features: bool, device: str, batch_size: int
) -> dict:
    """The teacher on every view of every training image: N x K forwards, once."""
    started = time.perf_counter()
    x = torch.from_numpy(data.x_train)
    n = len(x)
    dy, dx, flips = draw_views(n, recipe)
    shell = TeacherViews(recipe, dy, dx, flips, torch.empty(0), None, Path())
    logits = feats = None
    for v in range(recipe.k):
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n))
            view = torch.full_like(idx, v)
            xb = shell.images(x, idx, view).to(device)
            out, f = teacher.forward_with_features(xb.contiguous(memory_format=torch.channels_last))
            if logits is None:
                logits = torch.empty(n, recipe.k, out.shape[1])
            logits[idx, v] = out.float().cpu()
            if features and f is not None:
                f = f.flatten(1).float().cpu()
                if feats is None:
                    feats = torch.empty(n, recipe.k, f.shape[1])
                feats[idx, v] = f
    return {
        "recipe": recipe.as_dict(),
        "dy": dy,
        "dx": dx,
        "flips": flips,
        "logits": logits,
        "features": feats,
        "seconds": time.perf_counter() - started,
    }
