"""Search spaces: families of student architectures declared as data (search_spaces/*.yaml,
shipped in the package).

A space names a *generator* (registered here by name) and splits the generator's values into
searchable `params` (ranges the sampler explores) and `fixed` values. A point of the space plus a
seed gives a *spec*: a JSON-able dict that fully determines one student (autostudent.student
builds the module from it). This package imports no torch: the sampler and the config checks use
it without paying for a torch import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from autostudent import builtin
from autostudent.errors import UserError
from autostudent.registry import Registry

# Operation of a graph node / chain layer: ReLU → conv → BN. autostudent.student registers one
# module factory per name; a test keeps the two lists equal.
OpType = Literal["conv3x3", "sepconv3x3"]


class RangeParam(BaseModel):
    """A numeric range {low, high, log}; also the KD ranges of a study config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check_range(self) -> RangeParam:
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low {self.low}")
        return self

    def extremes(self) -> list[Any]:
        return [self.low, self.high]


class FloatParam(RangeParam):
    type: Literal["float"]

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log)


class IntParam(RangeParam):
    type: Literal["int"]
    low: int
    high: int

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, log=self.log)


class CategoricalParam(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["categorical"]
    choices: list[bool | int | float | str | None] = Field(min_length=1)

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.choices)

    def extremes(self) -> list[Any]:
        return list(self.choices)


AnyParam = FloatParam | IntParam | CategoricalParam
ParamSpec = Annotated[AnyParam, Field(discriminator="type")]
_PARAM_SPEC: TypeAdapter[AnyParam] = TypeAdapter(ParamSpec)


class StudentValues(BaseModel):
    """Values every generator reads; a generator's own values model extends this one."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    width: int = Field(16, ge=1, description="channels of stage 0 (and of the stem)")
    op: OpType = "sepconv3x3"
    channel_ratios: list[int] = Field(
        [1, 2, 4], min_length=3, max_length=3, description="channels of the 3 stages ÷ width"
    )
    stem_stride: int = Field(1, ge=1, le=4)

    @field_validator("channel_ratios")
    @classmethod
    def _positive(cls, ratios: list[int]) -> list[int]:
        if any(r < 1 for r in ratios):
            raise ValueError(f"channel ratios must be ≥ 1, got {ratios}")
        return ratios

    def stage_channels(self) -> list[int]:
        return [self.width * r for r in self.channel_ratios]


BuildFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Generator:
    """How a space's values become an architecture: `build(values, seed=…)` → architecture dict.

    `values` is the pydantic model of every value the generator reads (with defaults): it decides
    which names a YAML file may use and checks their types and bounds when the file is loaded.
    """

    values: type[StudentValues]
    build: BuildFn


GENERATORS: Registry[Generator] = Registry("search-space generator")


def generator(name: str, values: type[StudentValues]) -> Callable[[BuildFn], BuildFn]:
    """Register `build(values, *, seed, in_channels, num_classes, input_size) -> dict` as `name`."""

    def add(build: BuildFn) -> BuildFn:
        GENERATORS.register(name)(Generator(values, build))
        return build

    return add


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
                    spec = _PARAM_SPEC.validate_python(merged)
                except ValidationError as exc:
                    raise OverrideError(self.name, name, _first_error(exc)) from None
                if name in self.params:
                    _check_narrows(self.name, name, self.params[name], spec)
                params[name] = spec.model_dump()
                fixed.pop(name, None)
            else:
                if name in self.params:
                    _check_inside(self.name, name, self.params[name], value)
                params.pop(name, None)
                fixed[name] = value
        data = {**self.model_dump(), "params": params, "fixed": fixed}
        return _validate_space(data, f"overrides of search space {self.name!r}")

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
            raise UserError(f"search space {self.name!r}: point: {_first_error(exc)}") from None
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


class OverrideError(UserError):
    """An override of one value of a space that does not fit it (`reason` names what is wrong)."""

    def __init__(self, space: str, name: str, reason: str) -> None:
        self.space, self.name, self.reason = space, name, reason
        super().__init__(f"overrides of search space {space!r}: {name}: {reason}")


_ONLY_NARROW = "an override may only narrow a range or fix a value inside it"


def _check_narrows(space: str, name: str, old: AnyParam, new: AnyParam) -> None:
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


def _check_inside(space: str, name: str, old: AnyParam, value: Any) -> None:
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


def _plain(value: Any) -> Any:
    """numpy scalars (as some samplers hand out) → Python scalars, so the spec is JSON-able."""
    return value.item() if hasattr(value, "item") else value


_PARAM_TAGS = frozenset({"float", "int", "categorical"})


def _loc(parts: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted field path, without the param-type union tags."""
    return ".".join(str(part) for part in parts if part not in _PARAM_TAGS)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = _loc(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _validate_values(model: type[StudentValues], data: dict[str, Any], section: str) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ValueError(f"{section}.{field}: {err['input']!r}: {msg}") from None


def _validate_space(data: Any, where: str) -> SearchSpace:
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{where}: {_first_error(exc)}") from None


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
    space = _validate_space(data, str(path))
    return space.with_overrides(overrides) if overrides else space


# The built-in generators register themselves on import.
from autostudent.spaces import chain, nago  # noqa: E402

__all__ = [
    "GENERATORS",
    "CategoricalParam",
    "FloatParam",
    "Generator",
    "IntParam",
    "OpType",
    "OverrideError",
    "ParamSpec",
    "SearchSpace",
    "StudentValues",
    "available_spaces",
    "chain",
    "generator",
    "is_space_path",
    "load_space",
    "nago",
]
