"""Files that ship inside the package: the built-in search spaces and study templates.

They are package data (``autostudent/search_spaces/*.yaml``, ``autostudent/studies/*.yaml`` and
the studies' teachers), found through ``importlib.resources``, so an installed wheel has them
wherever it runs. The repository's top-level ``search_spaces/`` and ``studies/`` hold the same
files for users of a checkout; a test keeps the two copies equal.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

from autostudent.errors import UserError

Kind = Literal["search_spaces", "studies"]


def folder(kind: Kind) -> Path:
    """The package folder holding the built-in files of one kind."""
    root = files("autostudent") / kind
    if not isinstance(root, Path):  # e.g. a zip import: the files have no path of their own
        raise UserError(
            f"the built-in {kind} ship inside the autostudent package, which is not installed as "
            "files here (zip import?); give the path of a YAML file instead"
        )
    return root


def names(kind: Kind) -> list[str]:
    """Names of the built-in files of one kind (`nago`, `smoke`, …)."""
    return sorted(p.stem for p in folder(kind).glob("*.yaml"))


def find(kind: Kind, name: str) -> Path | None:
    """The built-in file `name` of one kind, or None."""
    path = folder(kind) / f"{name}.yaml"
    return path if path.is_file() else None
