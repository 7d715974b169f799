"""The lock that lets a test marked ``alone`` run with no other xdist worker's test beside it."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests import xdist_lock

REPO = Path(__file__).resolve().parents[1]

TAKER = """
import sys, time
from pathlib import Path
from tests.xdist_lock import hold
log = Path(sys.argv[2])
with hold(exclusive=sys.argv[1] == "exclusive"):
    with log.open("a") as f:
        f.write(sys.argv[1] + " in\\n")
    time.sleep(0.3)
    with log.open("a") as f:
        f.write(sys.argv[1] + " out\\n")
"""


def _until(found, what: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if found():
            return
        time.sleep(0.02)
    raise AssertionError(f"never: {what}")


def test_an_alone_test_waits_for_running_tests_and_later_ones_wait_for_it(
    tmp_path, monkeypatch
) -> None:
    env = {"PYTEST_XDIST_TESTRUNUID": uuid.uuid4().hex, "PYTEST_XDIST_WORKER": "gw0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    turnstile, _ = xdist_lock._files()
    log = tmp_path / "order.log"
    log.touch()

    def take(kind: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", TAKER, kind, str(log)], cwd=REPO)

    def turnstile_taken() -> bool:
        with turnstile.open("a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False

    try:
        with xdist_lock.hold(exclusive=False):  # a test of this worker is running
            alone = take("exclusive")
            _until(turnstile_taken, "the alone test queued")
            other = take("shared")  # the other worker's next test comes after the alone one
            time.sleep(0.5)
            assert log.read_text() == ""  # neither got in while a test runs
        assert alone.wait(timeout=60) == 0 and other.wait(timeout=60) == 0
        assert log.read_text().split("\n")[:-1] == [
            "exclusive in",
            "exclusive out",
            "shared in",
            "shared out",
        ]
    finally:
        turnstile.unlink(missing_ok=True)
        turnstile.with_suffix(".lock").unlink(missing_ok=True)


def test_outside_xdist_the_lock_does_nothing(monkeypatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert xdist_lock._files() is None
    with xdist_lock.hold(exclusive=True), xdist_lock.hold(exclusive=True):
        pass  # would deadlock if it locked
