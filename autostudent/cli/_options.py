"""Options that several commands share, spelled once."""

from __future__ import annotations

from pathlib import Path

import typer


def teacher_option() -> Path | None:
    """``--teacher PATH``: for the commands that retrain students from a study."""
    return typer.Option(
        None,
        "--teacher",
        help="The teacher file, where it is not where the search read it (a study copied to "
        "another machine); it must be the same file: its SHA-256 is checked.",
    )


def device_option(what: str = "retrains") -> str | None:
    """``--device``: where a command that retrains students from a study trains them."""
    return typer.Option(
        None,
        "--device",
        help=f"Where the {what} run: cpu | cuda | cuda:N (default: the study's "
        "resources.device; e.g. a study searched on a CPU, its long runs on a GPU).",
    )
