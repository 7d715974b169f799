"""Named points where the fault tests break this process: ``AUTOSTUDENT_KILL_AT=<point>:<n>``
SIGKILLs it the n-th time it reaches ``<point>`` (n = 1 when left out), and
``AUTOSTUDENT_RAISE_AT=<point>:<n>`` raises ``InjectedFault`` there instead (a bug in the code
at that point). Unset, a point costs two environment lookups. The points: ``teacher_cache`` (a
teacher-output entry written, not yet in place), ``trial_result`` (an epoch of a running trial
reported to the driver), ``trial_told`` (a trial's outcome stored, the next not yet asked for),
``db_commit`` (inside a database transaction, before its COMMIT), ``trial_epoch`` (a Ray
worker trained an epoch of a trial, not yet reported it), ``retrain_saved`` (an export's
retrain saved to its store, the export not yet written) and ``retrain_epoch`` (a retrain's
epoch checkpoint written, the next epoch not yet started)."""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[tuple[str, str]] = Counter()

KILL = "AUTOSTUDENT_KILL_AT"
RAISE = "AUTOSTUDENT_RAISE_AT"


class InjectedFault(RuntimeError):
    """What ``AUTOSTUDENT_RAISE_AT`` raises: an error no code path expects."""


def armed(variable: str = KILL) -> tuple[str, int] | None:
    spec = os.environ.get(variable)
    if not spec:
        return None
    point, _, n = spec.partition(":")
    return point, int(n or 1)


def reached(point: str) -> None:
    for variable in (KILL, RAISE):
        target = armed(variable)
        if target is None or target[0] != point:
            continue
        _reached[variable, point] += 1
        if _reached[variable, point] != target[1]:
            continue
        if variable == KILL:
            os.kill(os.getpid(), signal.SIGKILL)
        raise InjectedFault(f"injected fault at {point} ({RAISE}={os.environ[RAISE]})")
