"""The command line as a user runs it: a real `python -m autostudent` process per command.

The processes start together (module fixture `runs`) and each test checks one of them: on the
busy 2-core machine this keeps the module's wall time near that of its slowest command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from autostudent.measure import count_params
from autostudent.teacher import TeacherSource, check_teacher, file_sha256, load_teacher
from autostudent.training import accuracy
from autostudent.zoo import TEACHERS

Run = subprocess.CompletedProcess[str]


def autostudent(*args: str, cwd: Path | None = None) -> Run:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("AUTOSTUDENT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "autostudent", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """name → Future of the finished process, for every command the tests below look at."""
    work = tmp_path_factory.mktemp("cli")
    with ThreadPoolExecutor(max_workers=8) as pool:
        started: dict[str, Future[Run]] = {
            "help": pool.submit(autostudent, "--help"),
            "missing": pool.submit(
                autostudent, "teacher", "eval", str(work / "missing.pt2"), "--data", "digits"
            ),
            "bogus": pool.submit(autostudent, "teacher", "eval", "--bogus"),
            "bare": pool.submit(autostudent, "teacher"),
            "bench_sampler": pool.submit(
                autostudent,
                "bench",
                "hypervolume",
                "--samplers",
                "tpe,bogus",
                "--out",
                "hv",
                cwd=work,
            ),
            "train": pool.submit(
                autostudent,
                "teacher",
                "train",
                "--data",
                "digits",
                "--epochs",
                "1",
                "--arch",
                "resnet8",
                "--width",
                "8",
                "--out",
                "tmp/t.pt2",
                cwd=work,
            ),
        }
        teacher_file = request.getfixturevalue("teacher_file")  # trained meanwhile
        started["eval"] = pool.submit(
            autostudent,
            "teacher",
            "eval",
            str(teacher_file),
            "--data",
            "digits",
            "--val-fraction",
            "0.2",
            "--json",
        )
        yield {"work": work, **started}


def assert_user_error(run: subprocess.CompletedProcess[str], prefix: str) -> str:
    """Exit code 2 and exactly one line `error: …` on stderr, no traceback."""
    assert run.returncode == 2, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"error: {prefix}"), lines[0]
    return lines[0]


@pytest.mark.slow  # the module pool of real CLI processes
def test_help_lists_the_commands(runs):
    run = runs["help"].result()
    assert run.returncode == 0, run.stderr
    for command in ("search", "status", "teacher"):
        assert command in run.stdout


def test_the_command_list_gives_each_summary_as_one_line():
    """``--help`` lists each command by its docstring's first paragraph as one line, wrapped to
    the terminal: Typer's rich mode kept the docstring's line breaks there (ragged lines)."""
    import typer.main

    from autostudent.cli import app

    def commands(group):
        for name, command in group.commands.items():
            yield name, command
            yield from commands(command) if hasattr(command, "commands") else ()

    listed = dict(commands(typer.main.get_command(app)))
    assert {"search", "trial", "export", "teacher", "eval", "bench", "students"} <= listed.keys()
    for name, command in listed.items():
        summary = command.short_help or command.help
        assert summary and "\n" not in summary, (name, summary)
    assert listed["trial"].short_help == (
        "Build one student (given or seeded-random point), KD-train it from the cached teacher "
        "outputs and print its metrics: val accuracy per epoch, params, FLOPs, latency, time."
    )


@pytest.mark.slow  # the module pool of real CLI processes
def test_teacher_eval_of_a_missing_file(runs):
    line = assert_user_error(runs["missing"].result(), "teacher.path")
    assert str(runs["work"] / "missing.pt2") in line


@pytest.mark.slow  # the module pool of real CLI processes
def test_unknown_flag(runs):
    line = assert_user_error(runs["bogus"].result(), "")
    assert "--bogus" in line


@pytest.mark.slow  # the module pool of real CLI processes
def test_command_group_without_a_command(runs):
    assert_user_error(runs["bare"].result(), "")


@pytest.mark.slow  # the module pool of real CLI processes
def test_bench_hypervolume_unknown_sampler_writes_nothing(runs):
    line = assert_user_error(runs["bench_sampler"].result(), "--samplers: unknown sampler 'bogus'")
    assert "botorch" in line  # the known names
    assert not (runs["work"] / "hv").exists()


@pytest.mark.slow  # the module pool of real CLI processes
def test_teacher_eval_json(runs, teacher_file, zoo_teacher, digits):
    run = runs["eval"].result()
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["format"] == "export"
    assert result["sha256"] == file_sha256(teacher_file)
    assert result["params"] == count_params(zoo_teacher)
    # the same split as the `digits` fixture, so the same numbers as the module in memory
    assert result["val_accuracy"] == accuracy(zoo_teacher, digits.x_val, digits.y_val)
    assert result["test_accuracy"] == accuracy(zoo_teacher, digits.x_test, digits.y_test)


@pytest.mark.usefixtures("single_thread")
@pytest.mark.slow  # the module pool of real CLI processes
def test_teacher_train_writes_a_loadable_teacher(runs):
    run = runs["train"].result()
    assert run.returncode == 0, run.stderr
    out = runs["work"] / "tmp" / "t.pt2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["t.pt2"]  # no partial file left
    teacher = load_teacher(TeacherSource(out))
    assert teacher.format == "export" and teacher.has_features
    check_teacher(teacher, (1, 8, 8), 10)
    assert teacher.params() == count_params(TEACHERS.get("resnet8")(1, 10, width=8))
    with torch.inference_mode():
        logits, feats = teacher.forward_with_features(torch.zeros(3, 1, 8, 8))
    assert logits.shape == (3, 10) and feats.shape == (3, 32)
    assert "params" in run.stdout  # the evaluation line printed after training
