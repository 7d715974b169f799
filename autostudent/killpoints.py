"""Named points where the fault tests SIGKILL this process: ``AUTOSTUDENT_KILL_AT=<point>:<n>``
kills it the n-th time it reaches ``<point>`` (n = 1 when left out). Unset, a point costs one
environment lookup. The points: ``teacher_cache`` (a teacher-output entry written, not yet in
place), ``trial_result`` (an epoch of a running trial reported to the driver), ``trial_told``
(a trial's outcome stored, the next not yet asked for) and ``db_commit`` (inside a database
transaction, before its COMMIT)."""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[str] = Counter()


def armed() -> tuple[str, int] | None:
    spec = os.environ.get("AUTOSTUDENT_KILL_AT")
    if not spec:
        return None
    point, _, n = spec.partition(":")
    return point, int(n or 1)


def reached(point: str) -> None:
    target = armed()
    if target is None or target[0] != point:
        return
    _reached[point] += 1
    if _reached[point] >= target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
