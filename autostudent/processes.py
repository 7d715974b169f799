"""Processes of this machine: whether one (by pid) still runs — a driver's lease and a
half-written cache file belong to a process that may have been killed."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def die_with_parent() -> None:
    """In a pool worker: be killed when the process that started it dies (Linux's
    ``PR_SET_PDEATHSIG``), so that a killed ``export`` or ``baselines`` leaves no worker
    training on for minutes. Elsewhere a no-op: the worker then ends after its current run."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the setting took: go now
        os._exit(1)
