"""A search space as loaded from YAML: searchable params, fixed values and the generator; a point
of it plus a seed gives a student's spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import BaseDistribution
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autostudent.errors import UserError
from autostudent.spaces._generators import GENERATORS, StudentValues
from autostudent.spaces._messages import field_path, first_error
from autostudent.spaces._overrides import OverrideError, check_inside, check_narrows
from autostudent.spaces._params import PARAM_SPEC, ParamSpec


class SearchSpace(BaseModel):
    """A search space as loaded from YAML: searchable params, fixed values, the generator."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    generator: str
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    fixed: dict[str, Any] = Field(default_factory=dict)

    @field_validator("generator")
    @classmethod
    def _known_generator(cls, name: str) -> str:
        if name not in GENERATORS:
            raise ValueError(f"unknown generator {name!r} (known: {', '.join(GENERATORS)})")
        return name

    @model_validator(mode="after")
    def _check_values(self) -> SearchSpace:
        both = sorted(set(self.params) & set(self.fixed))
        if both:
            raise ValueError(f"{both[0]!r} is both in params and in fixed")
        values_model = GENERATORS.get(self.generator).values
        known = values_model.model_fields
        for section, names in (("params", self.params), ("fixed", self.fixed)):
            for name in names:
                if name not in known:
                    raise ValueError(
                        f"{section}.{name}: not a value of generator {self.generator!r} "
                        f"(known: {', '.join(sorted(known))})"
                    )
        _validate_values(values_model, dict(self.fixed), "fixed")
        for name, spec in self.params.items():
            for value in spec.extremes():
                _validate_values(values_model, {**self.fixed, name: value}, "params")
        return self

    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: spec.distribution() for name, spec in self.params.items()}

    def with_overrides(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """A copy with ranges narrowed ({"top_nodes": {"low": 3, "high": 6}}) or values fixed
        ({"width": 16}: a non-mapping value moves a param into `fixed`).

        An override stays inside the space: a range may shrink, never grow past the space's own
        bounds (the space file is where a family's limits are declared), and a searchable
        param is fixed only to a value of its range. A fixed value may be replaced, or opened
        up as a param by giving a full param (with `type`).
        """
        params: dict[str, Any] = {n: s.model_dump() for n, s in self.params.items()}
        fixed = dict(self.fixed)
        for name, value in overrides.items():
            if name not in params and name not in fixed:
                known = ", ".join(sorted([*params, *fixed]))
                raise OverrideError(self.name, name, f"not a param or fixed value ({known})")
            if isinstance(value, Mapping):
                if name in fixed and "type" not in value:
                    raise OverrideError(
                        self.name,
                        name,
                        "is a fixed value; to search it give a full param "
                        "(type: int|float|categorical with low/high or choices)",
                    )
                merged = {**params.get(name, {}), **value}
                try:
                    spec = PARAM_SPEC.validate_python(merged)
                except ValidationError as exc:
                    raise OverrideError(self.name, name, first_error(exc)) from None
                if name in self.params:
                    check_narrows(self.name, name, self.params[name], spec)
                params[name] = spec.model_dump()
                fixed.pop(name, None)
            else:
                if name in self.params:
                    check_inside(self.name, name, self.params[name], value)
                params.pop(name, None)
                fixed[name] = value
        data = {**self.model_dump(), "params": params, "fixed": fixed}
        return validate_space(data, f"overrides of search space {self.name!r}")

    def build_spec(
        self,
        point: Mapping[str, Any],
        seed: int,
        *,
        in_channels: int,
        num_classes: int,
        input_size: int,
    ) -> dict[str, Any]:
        """The spec of the student that (point, seed) gives; keys of `point` outside the space
        (e.g. KD settings sampled in the same trial) are ignored."""
        missing = sorted(set(self.params) - set(point))
        if missing:
            raise UserError(f"search space {self.name!r}: point lacks params {missing}")
        own_point = {name: _plain(point[name]) for name in self.params}
        gen = GENERATORS.get(self.generator)
        try:
            values = gen.values.model_validate({**self.fixed, **own_point})
        except ValidationError as exc:
            raise UserError(f"search space {self.name!r}: point: {first_error(exc)}") from None
        architecture = gen.build(
            values,
            seed=int(seed),
            in_channels=int(in_channels),
            num_classes=int(num_classes),
            input_size=int(input_size),
        )
        return {
            **architecture,
            "in_channels": int(in_channels),
            "num_classes": int(num_classes),
            "input_size": int(input_size),
            "space": self.name,
            "seed": int(seed),
            "point": own_point,
            "values": values.model_dump(mode="json"),
        }


def _plain(value: Any) -> Any:
    """numpy scalars (as some samplers hand out) → Python scalars, so the spec is JSON-able."""
    return value.item() if hasattr(value, "item") else value


def _validate_values(model: type[StudentValues], data: dict[str, Any], section: str) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = field_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ValueError(f"{section}.{field}: {err['input']!r}: {msg}") from None


def validate_space(data: Any, where: str) -> SearchSpace:
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{where}: {first_error(exc)}") from None
