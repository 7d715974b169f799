"""Overrides of a space (a study's `space.overrides`): they may narrow a range or fix a value
inside it, never widen the space."""

from __future__ import annotations

from typing import Any

from autostudent.errors import UserError
from autostudent.spaces._params import AnyParam, CategoricalParam, RangeParam


class OverrideError(UserError):
    """An override of one value of a space that does not fit it (`reason` names what is wrong)."""

    def __init__(self, space: str, name: str, reason: str) -> None:
        self.space, self.name, self.reason = space, name, reason
        super().__init__(f"overrides of search space {space!r}: {name}: {reason}")


_ONLY_NARROW = "an override may only narrow a range or fix a value inside it"


def check_narrows(space: str, name: str, old: AnyParam, new: AnyParam) -> None:
    if type(new) is not type(old):
        raise OverrideError(space, name, f"changes the param's type ({old.type} to {new.type})")
    if isinstance(old, CategoricalParam) and isinstance(new, CategoricalParam):
        extra = [c for c in new.choices if c not in old.choices]
        if extra:
            raise OverrideError(
                space, name, f"choices {extra} are not among the space's {old.choices}"
            )
    elif (
        isinstance(old, RangeParam)
        and isinstance(new, RangeParam)
        and (new.low < old.low or new.high > old.high)
    ):
        raise OverrideError(
            space,
            name,
            f"[{new.low}, {new.high}] widens the space's range [{old.low}, {old.high}]; "
            + _ONLY_NARROW,
        )


def check_inside(space: str, name: str, old: AnyParam, value: Any) -> None:
    if isinstance(old, CategoricalParam):
        if value not in old.choices:
            raise OverrideError(space, name, f"{value!r} is not among the choices {old.choices}")
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not old.low <= value <= old.high:
        raise OverrideError(
            space,
            name,
            f"{value!r} lies outside the space's range [{old.low}, {old.high}]; " + _ONLY_NARROW,
        )
