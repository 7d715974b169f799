"""image-folder data: class folders of real Fashion-MNIST images written as RGB PNG/JPEG files,
decoded once and cached; bad files; a zoo teacher trained on it and a search run on it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from autostudent import _image_folder
from autostudent.config import load_config
from autostudent.datasets import load_data, unit_test_split
from tests.image_folders import write_image_folder

SIZE32 = {"image_size": 32}


def load(root: Path, cache: Path | None, **options):
    return load_data("image-folder", root, options={**SIZE32, **options}, cache_dir=cache)


def test_splits_classes_and_pixels_are_the_files(fashion_image_folder, tmp_path):
    d = load(fashion_image_folder, tmp_path)
    assert d.input_shape == (3, 32, 32)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (400, 60, 100)  # val/ kept as is
    assert d.classes == tuple(f"class_{i}" for i in range(10)) and d.num_classes == 10
    assert np.bincount(d.y_test).tolist() == [10] * 10
    # The first test image (class_0, sorted file order) is the file, resized with Pillow.
    first = sorted((fashion_image_folder / "test" / "class_0").iterdir())[0]
    expected = np.asarray(Image.open(first).convert("RGB").resize((32, 32), Image.BILINEAR))
    test = unit_test_split("image-folder", fashion_image_folder, SIZE32, tmp_path)
    assert np.array_equal(np.rint(test.x[0] * 255).astype(np.uint8), expected.transpose(2, 0, 1))
    # RGB: the channels differ (each image has its own tint), the statistics are per channel
    assert len(set(np.round(d.mean, 4))) == 3
    assert not np.array_equal(test.x[:, 0], test.x[:, 1])


def test_grayscale_and_another_size(fashion_image_folder, tmp_path):
    d = load(fashion_image_folder, tmp_path, channels=1, image_size=16)
    assert d.input_shape == (1, 16, 16)
    assert len(d.mean) == 1


def test_exif_orientation_and_palette_pngs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # a camera photo stored sideways: left half red, tagged "rotate 90° clockwise to view"
    sideways = np.zeros((20, 40, 3), np.uint8)
    sideways[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(sideways).save(tmp_path / "a" / "photo.jpg", exif=exif, quality=100)
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.save(tmp_path / "b" / "green.png", transparency=0)
    splits = _image_folder.read_image_folder(tmp_path, image_size=8)
    photo, green = splits.x["train"][0], splits.x["train"][1]
    # upright, the red half is on top
    assert photo[0, :3].mean() > 200 and photo[0, 5:].mean() < 60 and photo[1].mean() < 60
    assert (green[1] == 255).all() and (green[0] == 0).all() and (green[2] == 0).all()


def test_one_folder_is_split_by_val_fraction(tmp_path):
    root = write_image_folder(tmp_path / "flat", {"": 10}, classes=3)
    d = load_data(
        "image-folder", root, val_fraction=0.2, seed=1, options=SIZE32, cache_dir=tmp_path
    )
    assert (len(d.x_train), len(d.x_val), d.x_test) == (24, 6, None)
    other = load_data(
        "image-folder", root, val_fraction=0.2, seed=2, options=SIZE32, cache_dir=tmp_path
    )
    assert d.identity != other.identity  # the seeded split is part of the identity


def test_decoded_once_then_read_from_the_cache_until_a_file_changes(
    fashion_image_folder, tmp_path, monkeypatch
):
    root = tmp_path / "images"
    shutil.copytree(fashion_image_folder, root)
    first = load(root, tmp_path / "cache")
    entries = list((tmp_path / "cache" / "image_folder").iterdir())
    assert len(entries) == 1 and entries[0].suffix == ".npz"

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    with monkeypatch.context() as m:
        m.setattr(_image_folder, "_decode", no_decoding)
        again = load(root, tmp_path / "cache")
    assert again.identity == first.identity
    assert np.array_equal(again.x_train, first.x_train)

    # a file rewritten (new content, new mtime): a new key, decoded again
    victim = sorted((root / "train" / "class_2").glob("*.png"))[0]
    Image.new("RGB", (40, 40), (255, 0, 0)).save(victim)
    changed = load(root, tmp_path / "cache")
    assert changed.identity != first.identity
    assert len(list((tmp_path / "cache" / "image_folder").iterdir())) == 2

    # a damaged cache entry is decoded again, not trusted
    for entry in (tmp_path / "cache" / "image_folder").iterdir():
        entry.write_bytes(b"garbage")
    assert load(root, tmp_path / "cache").identity == changed.identity


def _with_bad_files(src: Path, dst: Path) -> tuple[Path, Path]:
    shutil.copytree(src, dst)
    garbage = dst / "train" / "class_3" / "broken.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    jpeg = sorted((dst / "test" / "class_1").glob("*.jpg"))[0]
    jpeg.write_bytes(jpeg.read_bytes()[:300])  # truncated
    return garbage, jpeg


def test_a_bad_file_is_one_line_naming_it(fashion_image_folder, tmp_path, user_error):
    garbage, _ = _with_bad_files(fashion_image_folder, tmp_path / "images")
    user_error(
        lambda: load(tmp_path / "images", tmp_path / "cache"),
        str(garbage),
        "and 1 more bad files",
        "skip_bad_files",
    )
    assert not (tmp_path / "cache" / "image_folder").exists()  # nothing cached


def test_skip_bad_files_leaves_them_out_and_counts_them(fashion_image_folder, tmp_path):
    garbage, jpeg = _with_bad_files(fashion_image_folder, tmp_path / "images")
    d = load(tmp_path / "images", tmp_path / "cache", skip_bad_files=True)
    root = tmp_path / "images"
    assert set(d.skipped) == {str(garbage.relative_to(root)), str(jpeg.relative_to(root))}
    assert (len(d.x_train), len(d.x_test)) == (400, 99)  # broken.png was an extra file
    # the count survives the cache
    assert load(root, tmp_path / "cache", skip_bad_files=True).skipped == d.skipped


@pytest.mark.parametrize(
    ("make", "parts"),
    [
        (lambda r: (r / "class_a").mkdir(parents=True), ["1 class folder"]),
        (lambda r: (r / "val" / "x").mkdir(parents=True), ["no train/ folder"]),
        (
            lambda r: [(r / "train" / c).mkdir(parents=True) for c in ("a", "b")],
            ["holds no .png/.jpg/.jpeg images"],
        ),
    ],
)
def test_bad_layouts(tmp_path, make, parts, user_error):
    root = tmp_path / "images"
    root.mkdir()
    make(root)
    user_error(lambda: load(root, tmp_path / "cache"), "data.root", *parts)


def test_a_val_class_that_train_lacks(fashion_image_folder, tmp_path, user_error):
    root = tmp_path / "images"
    shutil.copytree(fashion_image_folder, root)
    (root / "val" / "zebra").mkdir()
    user_error(lambda: load(root, tmp_path / "cache"), "zebra", "class_0")


def test_options_belong_to_image_folder(tmp_path, user_error):
    def study(data: dict) -> Path:
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"study": "s", "teacher": {"path": "t.pt2"}, "data": data}))
        return path

    user_error(
        lambda: load_config(study({"name": "digits", "image_size": 32})),
        "data: digits takes no image_size",
    )
    user_error(
        lambda: load_config(study({"name": "image-folder", "root": ".", "channels": 2})),
        "data.channels",
    )
    config = load_config(study({"name": "image-folder", "root": "imgs", "image_size": 48}))
    assert config.data.options() == {"image_size": 48}
    assert config.data.root == (tmp_path / "imgs").resolve()
    user_error(lambda: load_data("digits", options={"channels": 3}), "data.channels")


# --- end to end: a zoo teacher and a search on an image folder -------------------------------


def study_yaml(tmp_path: Path, root: Path, teacher: Path, **data) -> Path:
    config = {
        "study": "images",
        "storage": f"sqlite:///{tmp_path / 'images.db'}",
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "image-folder", "root": str(root), "image_size": 32, **data},
        "teacher": {"path": str(teacher)},
        "space": {"name": "chain", "overrides": {"width": {"low": 4, "high": 8}}},
        "kd": {"losses": ["kd"]},
        "budget": {"epochs": 1, "batch_size": 64},
        "search": {"n_trials": 2, "workers": 2, "n_startup_trials": 2, "sampler": "random"},
    }
    path = tmp_path / "images.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_teacher_train_and_a_search_on_an_image_folder(
    fashion_image_folder, tmp_path, cli, monkeypatch
):
    import ray

    monkeypatch.setenv("AUTOSTUDENT_CACHE", str(tmp_path / "cache"))
    teacher = tmp_path / "teacher.pt2"
    code, out, err = cli(
        "teacher", "train", "--data", "image-folder", "--root", str(fashion_image_folder),
        "--image-size", "32", "--arch", "resnet8", "--width", "4", "--epochs", "1",
        "--out", str(teacher),
    )  # fmt: skip
    assert code == 0, err
    assert teacher.is_file() and "val" in out

    # a corrupt image: one line naming it, and no study database
    root = tmp_path / "images"
    garbage, _ = _with_bad_files(fashion_image_folder, root)
    code, out, err = cli("search", str(study_yaml(tmp_path, root, teacher)), "--quiet")
    assert code == 2 and err.count("\n") == 1 and str(garbage) in err, err
    assert not (tmp_path / "images.db").exists()

    # skip_bad_files: the search runs on what is readable, and status counts what was left out
    try:
        cfg = study_yaml(tmp_path, root, teacher, skip_bad_files=True)
        code, out, err = cli("search", str(cfg), "--quiet")
    finally:
        ray.shutdown()
    assert code == 0, err
    url = f"sqlite:///{tmp_path / 'images.db'}"
    code, out, err = cli("status", "--storage", url, "--study", "images", "--json")
    status = json.loads(out)
    assert status["states"]["COMPLETE"] == 2 and status["skipped_files"] == 2
    assert status["teacher"]["params"] > 0
    code, out, err = cli("status", "--storage", url, "--study", "images")
    assert "2 unreadable files skipped" in out, out
    assert os.listdir(tmp_path / "cache" / "image_folder")


def test_the_card_names_the_classes_by_output_index():
    from autostudent.card import render_card
    from tests.test_export import card_metrics

    card = render_card(card_metrics(classes=["cat", "dog"], dataset="image-folder"))
    assert "Classes by output index: cat, dog." in card
    assert "Classes by output index" not in render_card(card_metrics())
