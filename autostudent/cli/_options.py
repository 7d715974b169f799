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
