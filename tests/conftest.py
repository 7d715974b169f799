"""Shared fixtures: small real data (sklearn digits, a Fashion-MNIST subset) and a tiny zoo
teacher trained on digits and saved the way ``autostudent teacher train`` saves it.

PostgreSQL: ``postgres_url`` is a throwaway server the session starts itself (tests/postgres.py),
never one already running on the machine.

Torch runs on one thread in the tests that ask for ``single_thread``: on the busy 2-core
machine two threads fight the background jobs and make small models ~10x slower.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from autostudent.datasets import Data, load_data
from autostudent.errors import UserError
from autostudent.teacher import save_teacher
from autostudent.zoo import train_teacher

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two xdist workers on two cores: one torch thread each, and each process a test starts
    # (a CLI run, a driver) inherits one; two threads a worker make four on two cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Iterator[Path]:
    """One cache folder for the session (``$AUTOSTUDENT_CACHE``, inherited by the processes the
    tests start): the tests never write the user's ``~/.cache/autostudent``, and what one test
    computed (the packaged teacher's outputs on the smoke subset: ~30 s) the next one reuses, as
    a user's second search does. A test about a cold cache gives its own folder."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # shared by the workers (cache writes are atomic)
        root = root.parent
    path = root / "cache"
    path.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOSTUDENT_CACHE", str(path))
        yield path


@pytest.fixture(scope="module", autouse=True)
def no_ray_left_behind() -> Iterator[None]:
    """Every test file leaves no Ray running: a search run in-process starts one and keeps it (as
    Tune does), and the next file on the same xdist worker that starts a Ray of its own (a GPU
    share, a CPU count) would meet ``ray.init`` twice."""
    yield
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits(single_thread: None) -> Data:
    """sklearn's 8x8 digits: 1150 train, 288 val, 359 test examples."""
    return load_data("digits", val_fraction=0.2, seed=0)


@pytest.fixture(scope="session")
def fashion_subset(single_thread: None) -> Data:
    """Real Fashion-MNIST: 1000 training images and a small (1200) validation split."""
    return load_data("fashion-mnist", val_fraction=0.02, seed=0, train_subset=1000)


@pytest.fixture(scope="session")
def zoo_teacher(digits: Data) -> nn.Module:
    """A resnet8 of width 8 trained for two epochs on digits: better than chance, not good."""
    return train_teacher(
        "resnet8", digits, epochs=2, seed=0, width=8, batch_size=32, log=lambda _: None
    )


@pytest.fixture(scope="session")
def teacher_file(zoo_teacher: nn.Module, digits: Data, tmp_path_factory) -> Path:
    """`zoo_teacher` as a torch.export archive. Shared: copy it before changing it."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt2"
    save_teacher(zoo_teacher, path, digits.input_shape)
    return path


@pytest.fixture(scope="session")
def digits_study(tmp_path_factory, teacher_file: Path) -> tuple[Path, str]:
    """A real search, run once per session: 6 NAGO students KD-trained for 2 epochs on digits by
    two Ray workers. Shared: tests that write to it take a copy."""
    import shutil

    import ray
    import yaml

    from autostudent.config import load_config
    from autostudent.driver import run_search
    from autostudent.executor import Resources, init_ray

    tmp = tmp_path_factory.mktemp("digits-study")
    # the teacher named relative to the study file, as a user's study names it (results must
    # record it so, never as this machine's absolute path)
    (tmp / "teachers").mkdir()
    shutil.copyfile(teacher_file, tmp / "teachers" / "digits.pt2")
    config = {
        "study": "digits-study",
        "storage": f"sqlite:///{tmp / 'study.db'}",
        "seed": 0,
        "cache_dir": str(tmp / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": "teachers/digits.pt2"},
        "space": {
            "name": "nago",
            "overrides": {
                "top_nodes": {"low": 3, "high": 4},
                "mid_nodes": {"low": 1, "high": 2},
                "bottom_nodes": {"low": 1, "high": 2},
                "width": {"low": 4, "high": 8},
            },
        },
        "kd": {"losses": ["kd", "dkd"]},
        "budget": {"epochs": 2, "batch_size": 64},
        "search": {
            "n_trials": 6,
            "workers": 2,
            "n_startup_trials": 6,
            "sampler": "random",
            "early_stopping": "none",
        },
    }
    path = tmp / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    init_ray(None, Resources(workers=2))
    try:
        run_search(load_config(path), show_progress=False)
    finally:
        ray.shutdown()
    return tmp / "study.db", config["study"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of database ``test`` on a PostgreSQL server started for this session only (trust
    auth as user ``postgres``); fails, never skips, when the server cannot be started."""
    from tests.postgres import ThrowawayPostgres

    try:
        server = ThrowawayPostgres().start()
    except RuntimeError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        pytest.fail(f"no PostgreSQL for the tests: {problem}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def cli() -> Callable[..., tuple[int, str, str]]:
    """``cli(*args)``: run ``autostudent *args`` in-process; (exit code, stdout, stderr)."""
    import contextlib
    import io

    from autostudent.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def user_error() -> Callable[..., str]:
    """``user_error(call, *parts)``: assert ``call()`` raises a one-line UserError mentioning
    every part, and return its message."""

    def check(call: Callable[[], object], *parts: str) -> str:
        with pytest.raises(UserError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message, message
        for part in parts:
            assert part in message, f"{part!r} not in {message!r}"
        return message

    return check


@pytest.fixture(scope="session")
def fashion_image_folder(tmp_path_factory) -> Path:
    """An RGB 40x40 image folder of 560 real Fashion-MNIST images: train/ (40 a class), val/
    (6 a class) and test/ (10 a class). Shared: copy it before changing it."""
    root = tmp_path_factory.mktemp("fashion-images")
    from tests.image_folders import write_image_folder

    return write_image_folder(root, {"train": 40, "val": 6, "test": 10})


def pytest_collection_modifyitems(config, items) -> None:
    """The modules with the most slow tests first (each keeps its order): the two xdist workers
    take modules in this order, so the longest start first and both end together, instead of
    one worker running ``test_search.py`` alone at the end.

    Tests marked ``cuda`` need an NVIDIA GPU: skipped, with the reason, where torch sees none
    (``pytest -m cuda`` collects them all the same)."""
    from collections import Counter

    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    first_seen = {path: i for i, path in reversed(list(enumerate(item.path for item in items)))}
    items.sort(key=lambda item: (-slow[item.path], first_seen[item.path]))
    if torch.cuda.is_available():
        return
    build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA device"
    skip = pytest.mark.skip(reason=f"needs an NVIDIA GPU; torch sees {build} here")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
