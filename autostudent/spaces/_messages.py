"""Pydantic validation errors as one-line messages naming the field."""

from __future__ import annotations

from pydantic import ValidationError

_PARAM_TAGS = frozenset({"float", "int", "categorical"})


def field_path(parts: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted field path, without the param-type union tags."""
    return ".".join(str(part) for part in parts if part not in _PARAM_TAGS)


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = field_path(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg
