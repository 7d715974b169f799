"""A readers-writer lock across the xdist workers of one test run, on ``flock``.

Tests hold it shared; a test marked ``alone`` holds it exclusively. Writer first: the
exclusive holder takes the turnstile before waiting for the shared holders to leave, and every
shared taker passes the turnstile first, so a worker running many short tests cannot keep an
``alone`` test waiting for ever. Outside xdist (one process) it does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _files() -> tuple[Path, Path] | None:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
    if not run or not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    base = Path(tempfile.gettempdir()) / f"autostudent-tests-{run}"
    return base.with_suffix(".turnstile"), base.with_suffix(".lock")


@contextlib.contextmanager
def hold(*, exclusive: bool) -> Iterator[None]:
    files = _files()
    if files is None:
        yield
        return
    turnstile_path, lock_path = files
    with turnstile_path.open("a") as turnstile, lock_path.open("a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if not exclusive:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if exclusive:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
