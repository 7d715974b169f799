"""The Python API (``autostudent.search`` / ``load`` → ``Study``): one code path with the CLI.

The docs' examples run as written; the API and the CLI make the same study from the same config
and seed; an in-memory teacher module is stored once, by its bytes, so caching, resume and
export work as with a teacher file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from torch import nn

import autostudent
from autostudent import api
from autostudent.config import BudgetConfig, load_config
from autostudent.datasets import load_data
from autostudent.errors import UserError
from autostudent.inmemory import store_teacher
from autostudent.overrides import MODULE_TEACHER, study_config
from autostudent.teacher import TeacherSource, file_sha256, load_teacher

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "python-api.md"


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    from autostudent.executor import Resources, init_ray

    init_ray(None, Resources(workers=1))
    yield
    ray.shutdown()


def digits_config(tmp_path: Path, teacher_file: Path) -> dict:
    return {
        "study": "api",
        "storage": f"sqlite:///{tmp_path / 'api.db'}",
        "seed": 0,
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher_file)},
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
        "budget": {"epochs": 1, "batch_size": 64},
        "search": {
            "n_trials": 3,
            "workers": 1,
            "n_startup_trials": 3,
            "sampler": "random",
            "early_stopping": "none",
        },
    }


@pytest.mark.slow
def test_import_is_cheap_and_the_api_names_stay_functions() -> None:
    """`import autostudent` loads no torch, Optuna or Ray, `autostudent.cli` no torch; importing
    every submodule (the trap: a submodule binds the package attribute of its name) leaves
    `autostudent.search` the function."""
    code = (
        "import sys, autostudent\n"
        "heavy = [m for m in ('torch', 'optuna', 'ray', 'pandas', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        # the command line (--help, status, trials) starts without torch: 1 s, not 3
        "import autostudent.cli\n"
        "assert 'torch' not in sys.modules\n"
        "import autostudent.driver, autostudent.cli, autostudent.export, autostudent.study\n"
        "from autostudent import api\n"
        "assert autostudent.search is api.search and autostudent.load is api.load\n"
        "assert autostudent.Study is api.Study\n"
        "from autostudent import search\n"
        "assert search is api.search\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    package = Path(autostudent.__file__).parent
    for name in autostudent.__all__:
        assert not (package / f"{name}.py").exists() and not (package / name).exists(), name
    assert set(autostudent.__all__) <= set(dir(autostudent))


def test_overrides_are_validated_like_the_file(tmp_path, monkeypatch, user_error) -> None:
    monkeypatch.chdir(tmp_path)
    base = load_config("smoke")
    c, module = study_config(
        "smoke", n_trials=3, workers=None, budget={"epochs": 1}, storage="sqlite:///x.db"
    )
    assert module is None
    assert (c.search.n_trials, c.search.workers) == (3, base.search.workers)  # None: kept
    assert c.budget.epochs == 1 and c.budget.train_subset == base.budget.train_subset
    assert c.storage == "sqlite:///x.db" and c.teacher == base.teacher
    assert c.model_copy(update={"search": base.search, "budget": base.budget, "storage": None})
    # a section model replaces the section; a dataset name drops the old root
    c, _ = study_config(base, budget=BudgetConfig(epochs=2), data="digits")
    assert c.budget == BudgetConfig(epochs=2) and c.budget.train_subset is None
    assert (c.data.name, c.data.root) == ("digits", None)
    # a dict config: relative paths from the current folder; a teacher path replaces the section
    raw = {"study": "d", "data": {"name": "digits"}, "teacher": {"path": "t.pt2", "format": "x"}}
    user_error(lambda: study_config(raw), "teacher.format")
    c, _ = study_config(raw, teacher="sub/t.pt2")
    assert c.teacher.path == tmp_path / "sub" / "t.pt2" and c.teacher.format == "auto"
    c, module = study_config({"study": "d"}, teacher=nn.Linear(2, 2))
    assert isinstance(module, nn.Linear) and c.teacher.path == MODULE_TEACHER
    # a module keeps the images the config feeds its teacher
    raw = {"study": "d", "teacher": {"path": "t.pt2", "input": "unit"}}
    assert study_config(raw, teacher=nn.Linear(2, 2))[0].teacher.input == "unit"
    assert study_config(raw, teacher="t.pt2")[0].teacher.input == "normalised"  # a path: anew
    # arrays: an .npz in the cache, named by their content; the section's other fields stay
    x, y = np.zeros((120, 8, 8), np.float32), np.arange(120) % 3
    raw = {"study": "d", "teacher": "t.pt2", "cache_dir": "c", "data": {"val_fraction": 0.2}}
    c, _ = study_config(raw, data={"x": x, "y": y})
    assert (c.data.name, c.data.val_fraction) == ("npz", 0.2)
    assert c.data.root.parent == tmp_path / "c" / "data" and c.data.root.suffix == ".npz"
    assert study_config({**raw, "data": (x.copy(), y)})[0].data.root == c.data.root
    assert study_config(raw, data=(x, y + 1))[0].data.root != c.data.root
    assert load_data("npz", c.data.root).num_classes == 3
    user_error(lambda: study_config(raw, data={"x": x, "z": y}), "data: unknown array 'z'")
    shutil.rmtree(tmp_path / "c")

    user_error(lambda: study_config("smoke", n_trials=0), "search.n_trials", "got 0")
    user_error(lambda: study_config("smoke", budget={"epochs": 0}), "budget.epochs")
    user_error(lambda: study_config("smoke", search={"sampler": "x"}), "search.sampler", "'x'")
    user_error(lambda: study_config("smoke", data="nope"), "data.name", "unknown dataset")
    user_error(lambda: study_config("smoke", epochs=1), "epochs: unknown field", "budget")
    user_error(lambda: study_config("smoke", teacher=3), "teacher: expected a path")
    user_error(lambda: study_config({"study": "d"}), "teacher: Field required")
    user_error(lambda: study_config(3), "config: expected")
    user_error(lambda: study_config("nope"), "nope: no such file", "smoke")
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_a_module_teacher_is_one_file_named_by_its_bytes(tmp_path, zoo_teacher, digits) -> None:
    module = zoo_teacher
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.train()
    path = store_teacher(module, digits.input_shape, tmp_path)
    assert module.training  # the user's module is left as it was
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert path.parent == tmp_path / "teachers" and path.suffix == ".pt2"
    assert path.stem == file_sha256(path)[:20]
    mtime = path.stat().st_mtime_ns
    assert store_teacher(module, digits.input_shape, tmp_path) == path  # the same bytes
    assert path.stat().st_mtime_ns == mtime  # found, not written again
    loaded = load_teacher(TeacherSource(path), "cpu", digits.input_shape, digits.num_classes)
    assert loaded.format == "export" and loaded.has_features  # relational KD works with it
    x = torch.from_numpy(digits.x_val[:16])
    with torch.inference_mode():
        assert torch.allclose(loaded.module(x), module.eval()(x), atol=1e-5)
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert store_teacher(other, digits.input_shape, tmp_path) != path
    assert len(list((tmp_path / "teachers").iterdir())) == 2  # no partial files left

    class Branchy(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10] if x.sum() > 0 else x.flatten(1)[:, 10:20]

    with pytest.raises(UserError, match=r"teacher: torch\.export cannot capture the Branchy"):
        store_teacher(Branchy(), digits.input_shape, tmp_path)


@pytest.mark.slow
def test_api_and_cli_make_the_same_study(tmp_path, teacher_file, cli, ray_cluster) -> None:
    """The CLI's flags are the API's overrides: ``--teacher`` too (its study file names a
    teacher that is not there)."""
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(digits_config(tmp_path, teacher_file)))
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**digits_config(tmp_path, teacher_file),
                                     "teacher": {"path": "not-here.pt2"}}))  # fmt: skip
    url_cli, url_api = f"sqlite:///{tmp_path / 'cli.db'}", f"sqlite:///{tmp_path / 'api.db'}"
    flags = ["--n-trials", "3", "--workers", "1", "--seed", "7", "--quiet"]
    code, _, err = cli("search", str(other), "--storage", url_cli, *flags)
    assert code == 2 and err.startswith("error: teacher.path") and "not-here.pt2" in err, err
    code, out, err = cli("search", str(other), "--teacher", str(teacher_file),
                         "--storage", url_cli, *flags)  # fmt: skip
    assert code == 0, err
    assert out.startswith("study api: ") and f"({url_cli})" in out
    study = autostudent.search(path, storage=url_api, n_trials=3, workers=1, seed=7, progress=False)
    assert isinstance(study, api.Study) and study.name == "api" and study.storage == url_api

    by_cli = optuna.load_study(study_name="api", storage=url_cli)
    by_api = study.optuna
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    a, b = (s.get_trials(states=finished) for s in (by_cli, by_api))
    assert len(a) == len(b) == 3
    for x, y in zip(a, b, strict=True):
        assert x.params == y.params
        assert x.user_attrs["spec"] == y.user_attrs["spec"]
        assert x.user_attrs["arch_seed"] == y.user_attrs["arch_seed"]
    stored = {k: v for k, v in by_cli.user_attrs["config"].items() if k != "storage"}
    assert stored == {k: v for k, v in by_api.user_attrs["config"].items() if k != "storage"}
    assert stored["seed"] == 7 and stored["search"]["n_trials"] == 3

    # the handle's views are the CLI's
    code, out, _ = cli("status", "--storage", url_api, "--study", "api", "--json")
    assert json.loads(out) == {**study.status(), "driver": json.loads(out)["driver"]}
    front = study.front()
    assert list(front.columns) == list(api.FRONT_COLUMNS) and len(front) >= 1
    assert front["trial"].tolist() == [r["trial"] for r in study.status()["pareto"]]
    trials = autostudent.load(url_api, "api").trials()
    assert len(trials) == 3 and set(trials["state"]) <= {"COMPLETE", "PRUNED"}


def test_a_time_budget_ends_the_run_and_the_same_command_continues(
    tmp_path, teacher_file, cli, ray_cluster
) -> None:
    """--timeout: no trial starts after it (here: before the first), the run ends with exit 0
    and says so in its output and in status; the next run, without one, finishes the study."""
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(digits_config(tmp_path, teacher_file)))
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    flags = ["--storage", url, "--n-trials", "2", "--workers", "1", "--quiet"]
    code, _, err = cli("search", str(path), *flags, "--timeout", "15x")
    assert code == 2 and err.startswith("error: --timeout") and err.count("\n") == 1
    code, out, err = cli("search", str(path), *flags, "--timeout", "0.001")
    assert code == 0, err
    assert "stopped at its time budget (0.001 s) with 0/2 trials finished" in out
    status = autostudent.load(url, "api").status()
    assert status["stopped"] == {"by": "timeout", "timeout_s": 0.001, "finished": 0,
                                 "n_trials": 2}  # fmt: skip
    code, out, _ = cli("status", "--storage", url, "--study", "api")
    assert "last run stopped at its time budget" in out
    code, out, err = cli("search", str(path), *flags)
    assert code == 0, err
    status = autostudent.load(url, "api").status()
    assert status["stopped"] is None
    assert status["states"]["COMPLETE"] + status["states"]["PRUNED"] == 2


def test_api_errors_are_the_cli_lines_and_write_nothing(tmp_path, cli) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(digits_config(tmp_path, tmp_path / "missing.pt2")))
    url = f"sqlite:///{tmp_path / 'api.db'}"
    with pytest.raises(UserError, match=r"^data\.val_fraction: Input should be less than 0.5"):
        autostudent.search(path, storage=url, data={"val_fraction": 0.9})
    with pytest.raises(UserError) as info:
        autostudent.search(path, storage=url, progress=False)
    code, _, err = cli("search", str(path), "--storage", url, "--quiet")
    assert code == 2 and err == f"error: {info.value}\n"
    assert "teacher.path" in err and "missing.pt2" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # nothing written
    with pytest.raises(UserError) as info:
        autostudent.load(url, "nope")
    code, _, err = cli("status", "--storage", url, "--study", "nope")
    assert code == 2 and err == f"error: {info.value}\n" and "--storage: no database file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # not even an empty DB


def digits_arrays() -> tuple:
    """sklearn's digits as plain arrays, a user's own data: (x, y, x_test, y_test)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = (bunch.images / 16.0).astype("float32"), bunch.target
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.mark.slow
def test_module_teacher_and_arrays_search_resume_and_export(
    tmp_path, zoo_teacher, ray_cluster
) -> None:
    config = digits_config(tmp_path, Path("unused.pt2"))
    del config["data"]
    cache = tmp_path / "cache"
    arrays = digits_arrays()
    study = autostudent.search(config, n_trials=2, teacher=zoo_teacher, data=arrays, progress=False)
    (stored,) = (cache / "teachers").iterdir()
    (npz,) = (cache / "data").iterdir()
    stored_config = study.optuna.user_attrs["config"]
    assert stored_config["teacher"]["path"] == str(stored)
    assert stored_config["data"] == {**stored_config["data"], "name": "npz", "root": str(npz)}
    assert study.optuna.user_attrs["teacher"]["sha256"] == file_sha256(stored)
    assert study.optuna.user_attrs["teacher"]["format"] == "export"
    # the same module and arrays again: the same files, the same cached outputs, a resume
    copies = tuple(a.copy() for a in arrays)
    study = autostudent.search(config, n_trials=3, teacher=zoo_teacher, data=copies, progress=False)
    assert study.status()["states"]["COMPLETE"] + study.status()["states"]["PRUNED"] == 3
    assert list((cache / "teachers").iterdir()) == [stored]
    assert list((cache / "data").iterdir()) == [npz]
    assert len(list((cache / "teacher_outputs").glob("*.pt"))) == 1
    # another module is another teacher: refused before anything is written
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(UserError, match=r"teacher\.path: study 'api' was created with a different"):
        autostudent.search(config, n_trials=4, teacher=other, data=arrays, progress=False)
    assert len(autostudent.load(config["storage"], "api").optuna.trials) == 3

    # export from the database alone, as another process would
    loaded = autostudent.load(config["storage"], "api")
    trial = int(loaded.front()["trial"].iloc[0])
    metrics = loaded.export(tmp_path / "out", trial=trial, epochs=1, baseline=False, threads=1)
    assert metrics["trial"] == trial and metrics["teacher"]["sha256"] == file_sha256(stored)
    assert (tmp_path / "out" / "student.pt").is_file()
    with pytest.raises(UserError, match="--format"):
        loaded.export(tmp_path / "out2", trial=trial, format="tflite")
    with pytest.raises(UserError, match="colour: not an export option"):
        loaded.export(tmp_path / "out2", trial=trial, colour="red")
    assert not (tmp_path / "out2").exists()
    # the exported student teaching another retrain (a teacher assistant), named by a string
    taught = loaded.export(tmp_path / "taught", trial=trial, epochs=1, baseline=False, threads=1,
                           teach_with=str(tmp_path / "out"))  # fmt: skip
    assert taught["taught_by"]["input"] == "unit"
    assert taught["taught_by"]["params"] == metrics["params"] and taught["teacher"] == {
        **metrics["teacher"],
        "latency_ms": taught["teacher"]["latency_ms"],  # measured again
    }
    report = loaded.dashboard(tmp_path / "report.html")
    assert report.stat().st_size > 10_000
    with pytest.raises(UserError, match=r"--out: .* should end in \.html"):
        loaded.dashboard(tmp_path / "report.txt")


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, re.S | re.M)


def test_the_readme_api_example_is_a_tested_one() -> None:
    """A README block that calls the API is, verbatim, one of the docs' blocks run below."""
    docs = python_blocks(DOCS.read_text())
    for block in python_blocks((REPO / "README.md").read_text()):
        if "autostudent.search(" in block or "autostudent.load(" in block:
            assert block in docs, block


@pytest.mark.slow
def test_the_docs_examples_run_as_written(tmp_path, session_cache) -> None:
    """Every ``python`` block of docs/python-api.md, verbatim, in an empty folder (the README's
    API example is the first). The session's cache: a cold one only adds the teacher's outputs."""
    blocks = python_blocks(DOCS.read_text())
    assert len(blocks) == 2 and "autostudent.search(" in blocks[0]
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOSTUDENT_DEBUG",)}
    env.update(
        AUTOSTUDENT_CACHE=str(session_cache),
        OMP_NUM_THREADS="1",
        PYTHONWARNINGS="ignore",
        PYTHONPATH=str(REPO),
    )
    for i, block in enumerate(blocks):
        work = tmp_path / f"block{i}"
        work.mkdir()
        script = work.parent / f"block{i}.py"
        script.write_text(block)
        run = subprocess.run(
            [sys.executable, str(script)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, (i, run.stderr[-3000:])
    first, second = tmp_path / "block0", tmp_path / "block1"
    smoke = optuna.load_study(study_name="smoke", storage=f"sqlite:///{first / 'smoke.db'}")
    assert len(smoke.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 2
    assert (first / "smoke.html").is_file()
    digits = optuna.load_study(study_name="digits", storage=f"sqlite:///{second / 'digits.db'}")
    teacher = Path(digits.user_attrs["config"]["teacher"]["path"])
    assert teacher.parent == session_cache / "teachers"
    assert (
        hashlib.sha256(teacher.read_bytes()).hexdigest() == digits.user_attrs["teacher"]["sha256"]
    )
