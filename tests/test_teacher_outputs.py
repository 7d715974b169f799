"""Teacher outputs: computed once per (teacher file content, data identity), stored atomically,
read back by every later call."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
import torch
from torch import nn

import autostudent.teacher_outputs as teacher_outputs_module
from autostudent.datasets import load_data
from autostudent.teacher import TeacherSource, load_teacher, save_teacher
from autostudent.teacher_outputs import cache_path, teacher_outputs
from autostudent.training import accuracy

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
]


@pytest.fixture
def count_computes(monkeypatch) -> list[int]:
    """Counts calls of the expensive step (the teacher's forward over the training split)."""
    calls: list[int] = []
    compute = teacher_outputs_module._compute

    def counted(*args, **kwargs):
        calls.append(1)
        return compute(*args, **kwargs)

    monkeypatch.setattr(teacher_outputs_module, "_compute", counted)
    return calls


def test_outputs_are_the_teacher_forward_on_the_training_split(
    tmp_path, teacher_file, zoo_teacher, digits
):
    teacher = load_teacher(TeacherSource(teacher_file))
    out = teacher_outputs(teacher, digits, tmp_path, batch_size=300)  # several batches
    x = torch.from_numpy(digits.x_train)
    with torch.inference_mode():
        torch.testing.assert_close(out.logits, zoo_teacher(x))
        torch.testing.assert_close(out.features, zoo_teacher.body(x))
    assert out.val_accuracy == accuracy(zoo_teacher, digits.x_val, digits.y_val)
    assert out.test_accuracy == accuracy(zoo_teacher, digits.x_test, digits.y_test)
    assert out.params == teacher.params()
    assert out.path == cache_path(teacher, digits, tmp_path)


def test_computed_once_then_read_from_disk(
    tmp_path, teacher_file, digits, count_computes, monkeypatch
):
    teacher = load_teacher(TeacherSource(teacher_file))
    first = teacher_outputs(teacher, digits, tmp_path)
    stamp = first.path.stat().st_mtime_ns
    second = teacher_outputs(teacher, digits, tmp_path)
    assert len(count_computes) == 1
    # A fresh load of the same file (as a new process or a Ray worker does) also hits the cache;
    # AUTOSTUDENT_CACHE is where the cache lives when no folder is given.
    monkeypatch.setenv("AUTOSTUDENT_CACHE", str(tmp_path))
    third = teacher_outputs(load_teacher(TeacherSource(teacher_file)), digits)
    assert len(count_computes) == 1
    assert first.path.stat().st_mtime_ns == stamp
    for later in (second, third):
        assert later.path == first.path
        assert torch.equal(later.logits, first.logits)
        assert torch.equal(later.features, first.features)
        assert later.val_accuracy == first.val_accuracy
        assert later.test_accuracy == first.test_accuracy


def test_changed_teacher_file_gets_its_own_entry(tmp_path, teacher_file, zoo_teacher, digits):
    path = tmp_path / "teacher.pt2"
    shutil.copy(teacher_file, path)
    before = teacher_outputs(load_teacher(TeacherSource(path)), digits, tmp_path / "cache")

    changed = copy.deepcopy(zoo_teacher)
    with torch.no_grad():
        changed.head.bias[0] += 5.0
    save_teacher(changed, path, digits.input_shape)  # same path, new weights
    after = teacher_outputs(load_teacher(TeacherSource(path)), digits, tmp_path / "cache")

    assert after.path != before.path
    assert before.path.is_file()  # the old teacher's entry stays valid for its own studies
    torch.testing.assert_close(after.logits[:, 1:], before.logits[:, 1:])
    torch.testing.assert_close(after.logits[:, 0], before.logits[:, 0] + 5.0)


def test_other_data_identity_gets_its_own_entry(tmp_path, teacher_file, zoo_teacher, digits):
    other = load_data("digits", val_fraction=0.2, seed=1)  # another validation split
    assert other.identity != digits.identity
    teacher = load_teacher(TeacherSource(teacher_file))
    mine = teacher_outputs(teacher, digits, tmp_path)
    theirs = teacher_outputs(teacher, other, tmp_path)
    assert theirs.path != mine.path
    with torch.inference_mode():
        torch.testing.assert_close(theirs.logits, zoo_teacher(torch.from_numpy(other.x_train)))
    assert not torch.equal(theirs.logits, mine.logits)


def test_a_stale_entry_of_another_length_is_recomputed(tmp_path, teacher_file, digits):
    teacher = load_teacher(TeacherSource(teacher_file))
    path = cache_path(teacher, digits, tmp_path)
    path.parent.mkdir(parents=True)
    torch.save({"logits": torch.zeros(3, 10)}, path)
    out = teacher_outputs(teacher, digits, tmp_path)
    assert out.logits.shape == (len(digits.x_train), digits.num_classes)
    assert torch.load(path, weights_only=True)["logits"].shape[0] == len(digits.x_train)


def test_only_whole_files_are_left_behind(tmp_path, teacher_file, digits, monkeypatch):
    teacher = load_teacher(TeacherSource(teacher_file))
    save = torch.save

    def save_then_fail(obj, path):  # a disk that fills up halfway through the write
        save(obj, path)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(OSError):
        teacher_outputs(teacher, digits, tmp_path)
    folder = tmp_path / "teacher_outputs"
    assert list(folder.iterdir()) == []

    monkeypatch.setattr(torch, "save", save)
    out = teacher_outputs(teacher, digits, tmp_path)
    assert list(folder.iterdir()) == [out.path]


def test_teacher_without_features_stores_none(tmp_path, digits, count_computes):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    path = tmp_path / "plain.ts"
    torch.jit.script(module).save(str(path))
    teacher = load_teacher(TeacherSource(path))
    out = teacher_outputs(teacher, digits, tmp_path)
    assert out.features is None
    with torch.inference_mode():
        torch.testing.assert_close(out.logits, module(torch.from_numpy(digits.x_train)))
    assert teacher_outputs(teacher, digits, tmp_path).features is None
    assert len(count_computes) == 1


def test_a_damaged_entry_is_detected_and_rebuilt(tmp_path, teacher_file, digits, count_computes):
    teacher = load_teacher(TeacherSource(teacher_file))
    first = teacher_outputs(teacher, digits, tmp_path)
    assert first.rebuilt is None
    whole = first.path.read_bytes()
    damages = {
        "half-written": whole[: len(whole) // 2],
        "garbage": b"\0" * 1000,
        # a whole file whose numbers changed (another entry's, an edit): the checksum says so
        "tampered": _tampered(first.path),
    }
    for kind, damaged in damages.items():
        first.path.write_bytes(damaged)
        again = teacher_outputs(teacher, digits, tmp_path)
        assert again.rebuilt, kind
        assert torch.equal(again.logits, first.logits), kind
        assert torch.load(first.path, weights_only=True)["sha256"], kind  # whole, in place
    assert "checksum" in again.rebuilt
    assert len(count_computes) == 1 + len(damages)
    assert teacher_outputs(teacher, digits, tmp_path).rebuilt is None


def _tampered(path) -> bytes:
    import io

    stored = torch.load(path, weights_only=True)
    stored["logits"] = stored["logits"] + 1.0
    buffer = io.BytesIO()
    torch.save(stored, buffer)
    return buffer.getvalue()


# --- teacher outputs on K augmented views (consistent teaching) ---------------------------------


@pytest.fixture
def count_view_computes(monkeypatch) -> list[int]:
    calls: list[int] = []
    compute = teacher_outputs_module._compute_views

    def counted(*args, **kwargs):
        calls.append(1)
        return compute(*args, **kwargs)

    monkeypatch.setattr(teacher_outputs_module, "_compute_views", counted)
    return calls


def _by_hand(image: np.ndarray, dy: int, dx: int, flip: bool, pad: int, fill: float):
    """One view written out with numpy: pad with ``fill``, crop, mirror."""
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    h, w = image.shape[1:]
    out = padded[:, dy : dy + h, dx : dx + w]
    return out[:, :, ::-1] if flip else out


def test_view_targets_are_the_teacher_on_the_regenerated_view(
    tmp_path, teacher_file, zoo_teacher, digits
):
    teacher = load_teacher(TeacherSource(teacher_file))
    out = teacher_outputs(teacher, digits, tmp_path, views=3, view_features=True)
    views = out.views
    n, k = len(digits.x_train), 3
    assert views.logits.shape == (n, k, digits.num_classes)
    assert views.features.shape[:2] == (n, k)
    recipe = views.recipe
    assert (recipe.k, recipe.crop_pad, recipe.flip) == (3, 1, False)  # digits: no mirror
    assert not views.flips.any()
    assert int(views.dy.max()) == int(views.dx.max()) == 2 * recipe.crop_pad
    # the views are not the clean image: most are shifted, and the targets follow them
    assert ((views.dy != recipe.crop_pad) | (views.dx != recipe.crop_pad)).float().mean() > 0.5
    assert not torch.allclose(views.logits[:, 0], out.logits, atol=1e-3)

    idx = torch.tensor([0, 5, 17, 400, n - 1] * k)
    view = torch.arange(k).repeat_interleave(5)
    images = views.images(torch.from_numpy(digits.x_train), idx, view)
    for j, (i, v) in enumerate(zip(idx.tolist(), view.tolist(), strict=True)):
        expected = _by_hand(
            digits.x_train[i],
            int(views.dy[i, v]),
            int(views.dx[i, v]),
            bool(views.flips[i, v]),
            recipe.crop_pad,
            recipe.fill[0],
        )
        np.testing.assert_allclose(images[j].numpy(), expected, atol=1e-6)
    with torch.inference_mode():
        torch.testing.assert_close(views.logits[idx, view], zoo_teacher(images))
        torch.testing.assert_close(views.features[idx, view], zoo_teacher.body(images))
    # the black padding is the normalised value of a 0 pixel
    assert recipe.fill[0] == pytest.approx(-digits.mean[0] / digits.std[0])


def test_views_are_keyed_by_k_recipe_and_features(
    tmp_path, teacher_file, digits, count_view_computes
):
    teacher = load_teacher(TeacherSource(teacher_file))
    two = teacher_outputs(teacher, digits, tmp_path, views=2).views
    again = teacher_outputs(load_teacher(TeacherSource(teacher_file)), digits, tmp_path, views=2)
    assert len(count_view_computes) == 1  # read back, not recomputed
    assert again.views.path == two.path and torch.equal(again.views.logits, two.logits)
    assert torch.equal(again.views.dy, two.dy) and two.features is None

    three = teacher_outputs(teacher, digits, tmp_path, views=3).views
    reseeded = teacher_outputs(teacher, digits, tmp_path, views=2, view_seed=1).views
    with_features = teacher_outputs(teacher, digits, tmp_path, views=2, view_features=True).views
    paths = {two.path, three.path, reseeded.path, with_features.path}
    assert len(paths) == 4 and len(count_view_computes) == 4
    assert not torch.equal(reseeded.dy, two.dy)  # another seed, other crops
    assert with_features.features is not None
    assert teacher_outputs(teacher, digits, tmp_path).views is None  # K = 0: no views


def test_a_view_entry_with_another_recipe_is_rebuilt(
    tmp_path, teacher_file, digits, count_view_computes
):
    teacher = load_teacher(TeacherSource(teacher_file))
    first = teacher_outputs(teacher, digits, tmp_path, views=2).views
    stored = torch.load(first.path, weights_only=True)
    stored["recipe"] = {**stored["recipe"], "crop_pad": 3}
    stored["sha256"] = teacher_outputs_module._checksum(stored)  # whole, but not this recipe
    torch.save(stored, first.path)
    again = teacher_outputs(teacher, digits, tmp_path, views=2).views
    assert again.rebuilt == "another view recipe" and len(count_view_computes) == 2
    assert torch.equal(again.logits, first.logits)
    first.path.write_bytes(first.path.read_bytes()[:100])  # truncated
    assert teacher_outputs(teacher, digits, tmp_path, views=2).views.rebuilt.startswith("unread")


def test_flip_invariant_data_mirror_about_half_the_views():
    from autostudent.teacher_outputs import ViewRecipe, draw_views

    dy, dx, flips = draw_views(1000, ViewRecipe(4, 2, True, (0.0,), seed=0))
    assert dy.dtype == torch.uint8 and dy.shape == (1000, 4) and int(dy.max()) == 4
    assert 0.45 < flips.float().mean() < 0.55
    again = draw_views(1000, ViewRecipe(4, 2, True, (0.0,), seed=0))
    assert all(torch.equal(a, b) for a, b in zip((dy, dx, flips), again, strict=True))
