"""The code a result came from: the checkout's commit, or None where there is no checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from autostudent import __version__, provenance

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout"
)
def test_a_checkout_gives_its_commit_and_whether_the_package_differs():
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    info = provenance.code()
    assert info["version"] == __version__ and info["commit"] == head
    assert isinstance(info["dirty"], bool)


def test_outside_a_checkout_there_is_no_commit(tmp_path):
    assert provenance._git(tmp_path, "rev-parse", "HEAD") is None


def test_the_machine_names_its_processor_and_torch():
    import torch

    info = provenance.machine()
    assert info["cpu"] and isinstance(info["cpu"], str)
    assert info["cores"] >= 1 and info["torch"] == torch.__version__
