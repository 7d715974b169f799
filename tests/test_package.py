"""The installable package: built-in spaces and studies ship inside it, and a wheel installed
outside the repository runs the smoke study by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import optuna
import pytest

from autostudent import builtin
from autostudent.config import load_config
from autostudent.spaces import available_spaces, load_space
from autostudent.teacher import file_sha256

REPO = Path(__file__).resolve().parents[1]  # the checkout under test (tests only)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.suffix in (".yaml", ".pt2", ".md")
        and "results" not in p.relative_to(root).parts  # exported-student records, not package data
    }


def test_top_level_folders_are_the_package_files() -> None:
    """search_spaces/ and studies/ are the user-facing copies of the package data: equal."""
    for kind in ("search_spaces", "studies"):
        shipped, top = _files(builtin.folder(kind)), _files(REPO / kind)
        assert sorted(shipped) == sorted(top), kind
        changed = [name for name in shipped if shipped[name] != top[name]]
        assert not changed, f"{kind}: {changed} differ from autostudent/{kind}/"
    assert {"nago", "chain"} <= set(available_spaces())
    assert {"smoke", "fashion_mnist"} <= set(builtin.names("studies"))


def test_built_in_study_by_name_reads_the_package_and_writes_here(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config("smoke")
    package = builtin.folder("studies")
    assert config.teacher.path == package / "teachers" / "fashion_mnist_resnet8.pt2"
    assert config.teacher.path.is_file()
    assert config.storage == f"sqlite:///{tmp_path / 'smoke.db'}"  # never inside the package
    assert load_config(REPO / "studies" / "smoke.yaml").storage == (
        f"sqlite:///{REPO / 'studies' / 'smoke.db'}"
    )
    assert load_space(config.space.name).name == "nago"


@pytest.mark.slow  # builds and installs the wheel, runs a search
def test_wheel_installed_outside_the_repo_runs_the_smoke_study(tmp_path) -> None:
    # Build from a copy of the sources, so the checkout gets no build/ or egg-info of ours.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "autostudent",
        src / "autostudent",
        ignore=shutil.ignore_patterns("__pycache__", "*.db", "*.egg-info"),
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("autostudent-*.whl")

    # A fresh venv; its heavy dependencies (torch, Ray, Optuna) come from this venv's
    # site-packages through a .pth line, so the install takes seconds. A plain path line adds no
    # site dir: this venv's editable install of autostudent (a .pth finder) stays invisible.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "heavy_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )

    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUTOSTUDENT_DEBUG")}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    where = subprocess.run(
        [str(python), "-c", "import autostudent; print(autostudent.__file__)"],
        cwd=run_dir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout
    search = ["search", "smoke", "--n-trials", "1", "--workers", "1", "--quiet"]
    run = subprocess.run(
        [str(venv / "bin" / "autostudent"), *search],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{run_dir / 'smoke.db'}")
    finished = [t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"]
    assert len(finished) == 1
    # the packaged teacher, recorded as the built-in study names it (no path of this machine)
    packaged = Path(where).parent / "studies" / "teachers" / "fashion_mnist_resnet8.pt2"
    teacher = study.user_attrs["teacher"]
    assert teacher["path"] == "teachers/fashion_mnist_resnet8.pt2"
    assert packaged.is_file() and teacher["sha256"] == file_sha256(packaged)
    # the study and its worker log, nothing else
    assert sorted(p.name for p in run_dir.iterdir()) == ["smoke.db", "smoke.workers.log"]
