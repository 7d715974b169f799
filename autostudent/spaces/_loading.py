"""Finding and loading a space: a built-in one by name (package data) or a YAML file by path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from autostudent import builtin
from autostudent.errors import UserError
from autostudent.spaces._space import SearchSpace, validate_space


def available_spaces() -> list[str]:
    """Names of the built-in spaces (package data: autostudent/search_spaces/NAME.yaml)."""
    return builtin.names("search_spaces")


def is_space_path(name_or_path: str) -> bool:
    """A space YAML's path (`my/space.yaml`), not a built-in space's name (`nago`)."""
    path = Path(name_or_path)
    return path.suffix in (".yaml", ".yml") or len(path.parts) > 1


def _resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if is_space_path(name_or_path):
        if not path.is_file():
            raise UserError(f"{path}: no such search-space file")
        return path
    found = builtin.find("search_spaces", name_or_path)
    if found is None:
        known = ", ".join(available_spaces())
        raise UserError(
            f"unknown search space {name_or_path!r} (built-in: {known}; or give a YAML path)"
        )
    return found


def load_space(name_or_path: str, overrides: Mapping[str, Any] | None = None) -> SearchSpace:
    """A built-in space by name (`nago`, `chain`) or a space YAML file by path."""
    path = _resolve(str(name_or_path))
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise UserError(f"{path}: invalid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with name, generator, params, fixed")
    space = validate_space(data, str(path))
    return space.with_overrides(overrides) if overrides else space
