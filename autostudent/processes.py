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
