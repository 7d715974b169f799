"""The code is ruff clean (pyproject's rules): a lint slip fails CI, not a later reader."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_check_passes():
    done = ruff("check", "autostudent", "tests", "studies")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_leaves_the_package_and_tests_as_they_are():
    done = ruff("format", "--check", "autostudent", "tests")
    assert done.returncode == 0, done.stdout + done.stderr
