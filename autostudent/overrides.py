"""A study config from what the Python API is given: a built-in study name, a YAML path, a dict
or a `StudyConfig`, with keyword overrides of its fields.

Overrides follow the config's own layout, one keyword per top-level field:

- ``study``, ``storage``, ``seed``, ``cache_dir``: replace the value;
- a section (``data``, ``budget``, ``search``, …) given as a dict updates that section's fields
  (``budget={"epochs": 1}`` keeps the other budget fields); given as its model
  (``BudgetConfig(...)``), it replaces the section;
- ``teacher``: a path (str or ``Path``) replaces the whole section (format ``auto``); a
  ``torch.nn.Module`` is an in-memory teacher, returned beside the config for the driver to
  store as a file (``inmemory.py``), fed as the config's ``teacher.input`` says; a dict updates
  the section;
- ``data``: a dataset name replaces the name and drops ``root``; arrays — a tuple
  ``(x, y)`` or ``(x, y, x_test, y_test)``, or a dict with those keys — are stored as an
  ``.npz`` dataset in the cache (``inmemory.py``) and the section names it;
- ``n_trials``, ``workers``, ``timeout``: the ``search`` section's fields, as the CLI's flags.

The result is validated again as a whole, by the same models and with the same one-line
messages as a YAML file: an override is as checked as the file it overrides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from autostudent.config import StudyConfig, describe_error, load_config
from autostudent.errors import UserError

# Stands in for the path of an in-memory teacher until the driver has stored it (its input shape
# comes from the data, loaded there): the config must name a teacher to validate.
MODULE_TEACHER = Path("<in-memory torch.nn.Module>")
_SEARCH_FLAGS = ("n_trials", "workers", "timeout")


def study_config(config: Any, **overrides: Any) -> tuple[StudyConfig, Any | None]:
    """The validated config, and the in-memory teacher module (or None).

    Overrides whose value is None are left out (the config's value stays), as unset CLI flags.
    """
    raw, base = _raw(config)
    module = None
    teacher = raw.get("teacher")
    if teacher is not None and not isinstance(teacher, Mapping):  # a dict's teacher: path, module
        raw["teacher"], module = _teacher(teacher, {})
    arrays = _arrays(raw.get("data"))
    if arrays is not None:  # a dict's data given as arrays
        del raw["data"]
    known = set(StudyConfig.model_fields) | set(_SEARCH_FLAGS)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in known:
            raise UserError(f"{key}: unknown field (fields: {', '.join(sorted(known))})")
        if key in _SEARCH_FLAGS:
            raw["search"] = {**raw.get("search", {}), key: value}
        elif key == "teacher":
            raw["teacher"], module = _teacher(value, raw.get("teacher", {}))
        elif key == "data":
            arrays = _arrays(value)
            if isinstance(value, str):
                raw["data"] = {**raw.get("data", {}), "name": value, "root": None}
            elif arrays is None:
                raw["data"] = _section(value, raw.get("data"))
        else:
            raw[key] = _section(value, raw.get(key))
    if arrays is not None:
        from autostudent.inmemory import store_arrays
        from autostudent.teacher_outputs import default_cache_dir

        stored = store_arrays(arrays, Path(raw.get("cache_dir") or default_cache_dir()))
        data = raw.get("data") if isinstance(raw.get("data"), Mapping) else {}
        raw["data"] = {**data, "name": "npz", "root": stored}
    validated = _validated(raw, Path.cwd())
    if base is not None and validated.teacher.path == base.teacher.path:
        # the teacher as the study file named it (validation from a dict cannot know it)
        validated.teacher._given = base.teacher.given_path
    return validated, module


def _arrays(value: Any) -> dict | None:
    """Data given as arrays (a tuple, or a dict holding ``x``), or None."""
    if isinstance(value, tuple) and len(value) in (2, 4):
        return dict(zip(("x", "y", "x_test", "y_test"), value, strict=False))
    if isinstance(value, Mapping) and "x" in value:
        return dict(value)
    return None


def _raw(config: Any) -> tuple[dict, StudyConfig | None]:
    """The config as a dict of sections, before the overrides, and the config it came from."""
    if isinstance(config, str | os.PathLike):
        config = load_config(config)  # a built-in name or a YAML file: the CLI's path
    if isinstance(config, StudyConfig):
        return config.model_dump(), config
    if isinstance(config, Mapping):
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in config.items()}, None
    raise UserError(
        f"config: expected a built-in study name, a YAML path, a dict or a StudyConfig, "
        f"got {type(config).__name__}"
    )


def _section(value: Any, current: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping) and isinstance(current, Mapping):
        return {**current, **value}
    return value  # a scalar, or a wrong type the validation names


def _teacher(value: Any, current: Any) -> tuple[Any, Any | None]:
    if isinstance(value, str | os.PathLike):
        return {"path": Path(value)}, None
    if isinstance(value, BaseModel | Mapping):
        return _section(value, current), None
    from torch import nn  # only a module teacher needs torch here

    if isinstance(value, nn.Module):  # it keeps the images the config feeds the teacher
        kept = (
            {"input": current["input"]}
            if isinstance(current, Mapping) and "input" in current
            else {}
        )
        return {"path": MODULE_TEACHER, "format": "export", **kept}, value
    raise UserError(
        f"teacher: expected a path, a dict or a torch.nn.Module, got {type(value).__name__}"
    )


def _validated(raw: dict, base: Path) -> StudyConfig:
    """Validate as `load_config` does; relative input paths are taken from ``base``."""
    try:
        config = StudyConfig.model_validate(raw, context={"base": base})
    except ValidationError as exc:
        raise UserError(describe_error(exc)) from None
    # Absolute, so that the study's stored config still finds them from another folder
    # (`export` reads the teacher and the data from there).
    if config.teacher.path != MODULE_TEACHER:
        config.teacher.path = _absolute(base, config.teacher.path)
    config.data.root = _absolute(base, config.data.root)
    return config


def _absolute(base: Path, value: Path | None) -> Path | None:
    if value is None or value.is_absolute():
        return value
    return (base / value.expanduser()).resolve()
