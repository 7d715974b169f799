"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (config, data, teacher, storage URL, flag): message names the field or file."""


class TrialFailed(Exception):
    """A trial that cannot produce a result (disconnected graph, over a cap, NaN loss).

    The message is the failure reason stored on the trial; the search goes on. A failure
    whose sizes are known carries them (``sizes``) and the caps' constraint values
    (``constraints``: value - cap), stored on the trial for the sampler's models.
    """

    def __init__(
        self,
        reason: str,
        *,
        constraints: dict[str, float] | None = None,
        sizes: dict[str, float] | None = None,
    ) -> None:
        super().__init__(reason)
        self.constraints = constraints or {}
        self.sizes = sizes or {}


class RayFailed(Exception):
    """This machine's own Ray node did not start (a machine too loaded for its start-up
    timeouts, a full /tmp): nothing was trained; the same command continues the study."""


class SearchStopped(Exception):
    """The search gave up before reaching its trial count (e.g. every proposal failed)."""


class Interrupted(Exception):
    """Ctrl-C stopped the search; the study database was left consistent."""


class ExportFailed(Exception):
    """An export whose artefacts failed their own check (student.onnx disagreeing with torch):
    nothing is written."""
