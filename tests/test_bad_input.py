"""Bad input, as a user types it: every case exits 2 with one line ``error: …`` naming the field or
file, prints no traceback and leaves no study behind.

The CLI runs in-process (``autostudent.cli.main``): a case costs its own checks, not a Python and
torch start-up. The study-reuse cases need a study a real search wrote: that search runs in a
subprocess started with the module, while the other cases run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml

from autostudent.cli import main
from autostudent.teacher import save_teacher
from autostudent.zoo import TEACHERS

DIGITS = (1, 8, 8)


def _teacher(path: Path, width: int) -> Path:
    torch.manual_seed(0)
    save_teacher(TEACHERS.get("resnet8")(1, 10, width=width), path, DIGITS)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Two small untrained digits teachers, broken teacher files and broken datasets."""
    d = tmp_path_factory.mktemp("inputs")
    teacher = _teacher(d / "teacher.pt2", 4)
    blob = teacher.read_bytes()
    (d / "truncated.pt2").write_bytes(blob[: len(blob) // 2])
    (d / "garbage.pt2").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "empty.pt2").write_bytes(b"")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (60, 8, 8), dtype=np.uint8)
    np.savez(d / "three_classes.npz", x=x, y=np.arange(60) % 3)
    np.savez(
        d / "rgb.npz", x=rng.integers(0, 255, (60, 3, 8, 8), dtype=np.uint8), y=np.arange(60) % 10
    )
    np.savez(d / "empty.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
    np.savez(d / "no_labels.npz", x=x)
    np.savez(d / "ten_classes.npz", x=x, y=np.arange(60) % 10)
    whole = (d / "ten_classes.npz").read_bytes()
    (d / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    return {"dir": d, "teacher": teacher, "teacher2": _teacher(d / "other.pt2", 8)}


def base_config(folder: Path, teacher: Path, name: str) -> dict:
    return {
        "study": name,
        "storage": f"sqlite:///{folder / (name + '.db')}",
        "seed": 0,
        "cache_dir": str(folder / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher)},
        "space": {"name": "chain", "overrides": {"width": {"low": 4, "high": 8}}},
        "kd": {"losses": ["kd"]},
        "budget": {"epochs": 1, "batch_size": 64},
        "search": {
            "n_trials": 1,
            "workers": 1,
            "n_startup_trials": 1,
            "sampler": "random",
            "early_stopping": "none",
        },
    }


def merged(config: dict, patch: dict) -> dict:
    out = dict(config)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def run_cli(capsys, *args: str) -> str:
    """Run the CLI in-process; assert exit 2 and one `error:` line; return that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def study_names(url: str) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(url)]


# --- the config file itself: each case is a YAML text, or a patch of the base config -----------

Patch = dict | str | Callable[[dict[str, Path]], dict]

CONFIG_CASES: list[tuple[str, Patch, list[str]]] = [
    ("malformed YAML", "study: x\nteacher: {path: t.pt2\n", ["not valid YAML", "line"]),
    ("a list, not a mapping", "- study\n- teacher\n", ["expected a mapping"]),
    ("empty file", "", ["expected a mapping"]),
    ("unknown top-level key", {"studdy": "x"}, ["studdy", "unknown field"]),
    ("unknown nested key", {"budget": {"epoch": 3}}, ["budget.epoch", "unknown field"]),
    ("missing teacher section", {"teacher": None}, ["teacher"]),
    ("epochs out of range", {"budget": {"epochs": 0}}, ["budget.epochs", "greater than"]),
    ("val_fraction out of range", {"data": {"val_fraction": 0.7}}, ["data.val_fraction"]),
    ("wrong type", {"budget": {"batch_size": "big"}}, ["budget.batch_size"]),
    ("negative seed", {"seed": -1}, ["seed", "greater than or equal to 0"]),
    ("negative split seed", {"data": {"split_seed": -2}}, ["data.split_seed"]),
    (
        "inverted KD range",
        {"kd": {"temperature": {"low": 5, "high": 1}}},
        ["kd.temperature", "low 5.0 > high 1.0"],
    ),
    ("alpha beyond [0, 1]", {"kd": {"alpha": {"low": 0, "high": 2}}}, ["kd.alpha", "[0, 1]"]),
    ("unknown KD loss", {"kd": {"losses": ["kd", "crd"]}}, ["kd.losses", "crd"]),
    ("unknown sampler", {"search": {"sampler": "cmaes"}}, ["search.sampler", "cmaes"]),
    ("unknown objective", {"search": {"objectives": ["accuracy", "energy"]}}, ["energy"]),
    ("accuracy not first", {"search": {"objectives": ["params", "accuracy"]}}, ["objectives"]),
    ("unknown dataset", {"data": {"name": "imagenet"}}, ["data.name", "imagenet"]),
    ("unknown device", {"resources": {"device": "tpu"}}, ["resources.device", "tpu"]),
    ("unknown space", {"space": {"name": "resnet", "overrides": {}}}, ["space.name", "resnet"]),
    (
        "unknown override dimension",
        {"space": {"overrides": {"depth_9": 2}}},
        ["space.overrides", "depth_9"],
    ),
    (
        "override widens a range",
        {"space": {"name": "nago", "overrides": {"top_nodes": {"low": 1, "high": 99}}}},
        ["space.overrides", "top_nodes", "[1, 99] widens the space's range [3, 10]"],
    ),
    (
        "override fixes a value outside the range",
        {"space": {"overrides": {"width": 999}}},
        ["space.overrides", "width", "999 lies outside the space's range [4, 64]"],
    ),
    (
        "inverted override range",
        {"space": {"overrides": {"depth_0": {"low": 3, "high": 1}}}},
        ["space.overrides", "depth_0", "low 3 > high 1"],
    ),
    (
        "missing teacher file",
        lambda f: {"teacher": {"path": str(f["dir"] / "nope.pt2")}},
        ["teacher.path", "nope.pt2"],
    ),
    (
        "truncated teacher file",
        lambda f: {"teacher": {"path": str(f["dir"] / "truncated.pt2")}},
        ["teacher.path", "truncated.pt2"],
    ),
    (
        "garbage teacher file",
        lambda f: {"teacher": {"path": str(f["dir"] / "garbage.pt2")}},
        ["teacher.path", "garbage.pt2"],
    ),
    (
        "empty teacher file",
        lambda f: {"teacher": {"path": str(f["dir"] / "empty.pt2")}},
        ["teacher.path", "empty.pt2"],
    ),
    (
        "teacher has other classes than the data",
        lambda f: {"data": {"name": "npz", "root": str(f["dir"] / "three_classes.npz")}},
        ["teacher.path", "3 classes"],
    ),
    (
        "teacher takes other images than the data",
        lambda f: {"data": {"name": "npz", "root": str(f["dir"] / "rgb.npz")}},
        ["teacher.path", "shape"],
    ),
    (
        "empty dataset",
        lambda f: {"data": {"name": "npz", "root": str(f["dir"] / "empty.npz")}},
        ["data.root", "empty.npz"],
    ),
    (
        "truncated dataset",
        lambda f: {"data": {"name": "npz", "root": str(f["dir"] / "truncated.npz")}},
        ["data.root", "truncated.npz"],
    ),
    (
        "dataset without labels",
        lambda f: {"data": {"name": "npz", "root": str(f["dir"] / "no_labels.npz")}},
        ["data.root", "'y'"],
    ),
    (
        "missing dataset",
        lambda f: {"data": {"name": "npz", "root": str(f["dir"] / "nope.npz")}},
        ["data.root", "nope.npz"],
    ),
    ("storage URL without a scheme", {"storage": "study.db"}, ["storage", "study.db"]),
    (
        "storage URL of an unknown database",
        {"storage": "nosuchdb://host/x"},
        ["storage", "nosuchdb"],
    ),
    (
        "unreachable PostgreSQL",
        {"storage": "postgresql://someone:s3cret@127.0.0.1:1/x"},
        ["storage", "127.0.0.1:1"],
    ),
    (
        "SQLite file in a missing folder",
        lambda f: {"storage": f"sqlite:///{f['dir']}/no/such/dir/x.db"},
        ["storage", "no/such/dir"],
    ),
]


@pytest.mark.parametrize(
    ("patch", "parts"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_bad_config(capsys, files, tmp_path, patch: Patch, parts: list[str]) -> None:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    config = base_config(tmp_path, files["teacher"], name)
    path = tmp_path / "study.yaml"
    if isinstance(patch, str):
        path.write_text(patch)
    else:
        patch = patch(files) if callable(patch) else patch
        path.write_text(yaml.safe_dump(merged(config, patch)))
    line = run_cli(capsys, "search", str(path), "--quiet")
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"
    assert "s3cret" not in line
    assert not (tmp_path / f"{name}.db").exists()  # nothing written, not even an empty DB


# --- flags ------------------------------------------------------------------------------------

FLAG_CASES: list[tuple[str, list[str], list[str]]] = [
    ("unknown flag", ["--bogus"], ["--bogus"]),
    ("zero trials", ["--n-trials", "0"], ["--n-trials"]),
    ("workers not a number", ["--workers", "two"], ["--workers", "integer"]),
    ("flag without its value", ["--storage"], ["--storage"]),
    ("storage flag without a scheme", ["--storage", "x.db"], ["--storage", "x.db"]),
    ("negative seed", ["--seed", "-3"], ["--seed", "greater than or equal to 0"]),
]


@pytest.mark.parametrize(
    ("args", "parts"), [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES]
)
def test_bad_flag(capsys, files, tmp_path, args: list[str], parts: list[str]) -> None:
    name = f"flag-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path, files["teacher"], name)))
    line = run_cli(capsys, "search", str(path), "--quiet", *args)
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"
    assert not (tmp_path / f"{name}.db").exists()


def test_missing_config_file(capsys, tmp_path) -> None:
    line = run_cli(capsys, "search", str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in line


READ_COMMANDS = {
    "status": ["status"],
    "trials": ["trials"],
    "dashboard": ["dashboard", "--out", "{tmp}/report.html"],
    "export": ["export", "--trial", "0", "--out", "{tmp}/student"],
    "baselines": ["baselines"],
    "bench students": ["bench", "students"],
}


@pytest.mark.parametrize("args", READ_COMMANDS.values(), ids=READ_COMMANDS.keys())
def test_reading_a_missing_sqlite_file_creates_none(capsys, tmp_path, args: list[str]) -> None:
    """A typo in the file name is named, not answered with an empty database made on the spot."""
    db = tmp_path / "typo.db"
    args = [a.format(tmp=tmp_path) for a in args]
    line = run_cli(capsys, *args, "--storage", f"sqlite:///{db}", "--study", "demo")
    assert line.startswith("error: --storage: no database file") and "typo.db" in line, line
    assert list(tmp_path.iterdir()) == []


def test_bench_hypervolume_unknown_task(capsys, tmp_path) -> None:
    out = tmp_path / "hv"
    line = run_cli(capsys, "bench", "hypervolume", "--task", "mnist", "--out", str(out))
    assert "--task: unknown task 'mnist'" in line and "fashion-mnist-2k" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--coverage", "gap_share=2", "--coverage: gap_share: Input should be less than or equal"),
        ("--coverage", "gap_share", "--coverage: 'gap_share' is not KEY=VALUE"),
        ("--coverage", "retry=false", "--coverage: retry: unknown field"),
        ("--rung-average", "1.5", "--rung-average: a decay between 0 and 1, auto or null, got"),
        ("--rung-average", "often", "--rung-average: a decay between 0 and 1, auto or null, got"),
    ],
)  # fmt: skip
def test_bench_hypervolume_bad_arm(capsys, tmp_path, flag, value, expected) -> None:
    out = tmp_path / "hv"
    line = run_cli(capsys, "bench", "hypervolume", flag, value, "--out", str(out))
    assert expected in line, line
    assert not out.exists()


# --- a study reused with another identity ---------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def prior_run(files):
    """A real `autostudent search` (1 trial, accuracy × params) writes the study that the reuse
    cases come back to; it runs while the other cases do."""
    folder = files["dir"] / "prior"
    folder.mkdir()
    config = base_config(folder, files["teacher"], "reused")
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("AUTOSTUDENT_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "autostudent", "search", str(path), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    yield {"proc": proc, "folder": folder, "config": config, "url": config["storage"]}
    if proc.poll() is None:  # the reuse cases were deselected: stop it as Ctrl-C would
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def prior_study(prior_run) -> dict:
    _, err = prior_run["proc"].communicate(timeout=300)
    assert prior_run["proc"].returncode == 0, err
    return prior_run


def snapshot(url: str, name: str) -> tuple:
    study = optuna.load_study(study_name=name, storage=url)
    trials = [(t.number, t.state, t.values, t.params) for t in study.trials]
    return trials, study.metric_names, repr(sorted(study.user_attrs.items()))


REUSE_CASES: list[tuple[str, Callable[[dict[str, Path]], dict], list[str]]] = [
    (
        "other objectives",
        lambda f: {"search": {"objectives": ["accuracy", "flops"]}},
        ["search.objectives", "'reused'", "accuracy, params", "accuracy, flops"],
    ),
    (
        "other teacher",
        lambda f: {"teacher": {"path": str(f["teacher2"])}},
        ["teacher.path", "'reused'"],
    ),
    ("other data split", lambda f: {"data": {"val_fraction": 0.25}}, ["data", "'reused'"]),
]


@pytest.mark.slow  # a real search first (prior_study)
@pytest.mark.parametrize(
    ("patch", "parts"), [c[1:] for c in REUSE_CASES], ids=[c[0] for c in REUSE_CASES]
)
def test_study_reused_with_another_identity(
    capsys, files, prior_study, tmp_path, patch, parts
) -> None:
    url = prior_study["url"]
    before = snapshot(url, "reused")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(merged(prior_study["config"], patch(files))))
    line = run_cli(capsys, "search", str(path), "--quiet", "--n-trials", "2")
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"
    assert snapshot(url, "reused") == before  # not a trial, not an attribute written
    assert study_names(url) == ["reused"]
