"""The code a result came from: the package version and, when autostudent runs from a git
checkout, the commit and whether the package's files differ from it; and the machine it ran on.
Final-fidelity runs store both, so a figure that stops reproducing can be traced to the code
that made it — or to the processor: the same code, seed and data give other figures on another
CPU (its kernels round differently, and a short high-rate schedule amplifies that)."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


@functools.cache
def code() -> dict:
    """``{"version", "commit", "dirty"}``; commit and dirty are None outside a git checkout
    (an installed wheel) or without git."""
    package = Path(__file__).resolve().parent
    try:  # the installed distribution's version (the package's __init__ would be a circle)
        version = metadata.version("autostudent")
    except metadata.PackageNotFoundError:
        version = None
    info: dict = {"version": version, "commit": None, "dirty": None}
    head = _git(package, "rev-parse", "HEAD")
    if head is None:
        return info
    status = _git(package, "status", "--porcelain", "--untracked-files=no", "--", str(package))
    info["commit"] = head
    info["dirty"] = None if status is None else bool(status)
    return info


@functools.cache
def machine() -> dict:
    """``{"cpu", "cores", "torch"}``: the processor's model name (``platform.machine()``
    where the system does not say), the cores the OS reports and torch's version."""
    import torch

    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None
            )
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
    }


def _git(where: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
