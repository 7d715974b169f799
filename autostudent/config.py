"""A study is a YAML file validated into these models; every error names its field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from autostudent import builtin
from autostudent.errors import UserError
from autostudent.objectives import OBJECTIVES
from autostudent.objectives import Name as Objective
from autostudent.spaces import RangeParam as Range

KD_LOSS_NAMES = ("kd", "mse", "dkd", "rkd", "wsl")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    name: str = "fashion-mnist"
    root: Path | None = None
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    split_seed: int = Field(0, ge=0)
    # The options of one dataset (image-folder's); None: not set, the dataset's default
    image_size: int | None = Field(None, ge=4, le=1024)
    channels: Literal[1, 3] | None = None
    skip_bad_files: bool | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from autostudent.datasets import DATASETS

        if v not in DATASETS:
            raise ValueError(f"unknown dataset {v!r} (known: {', '.join(DATASETS)})")
        return v

    @model_validator(mode="after")
    def _options_of_the_dataset(self) -> DataConfig:
        import inspect

        from autostudent.datasets import DATASETS

        takes = inspect.signature(DATASETS.get(self.name)).parameters
        for key in self.options():
            if key not in takes:
                raise ValueError(f"{self.name} takes no {key}")
        return self

    def options(self) -> dict[str, Any]:
        """The dataset options this config sets (what `load_data` passes to the loader)."""
        return {
            key: value
            for key in ("image_size", "channels", "skip_bad_files")
            if (value := getattr(self, key)) is not None
        }


class TeacherNormalisation(_Section):
    """A teacher's own input normalisation: ``(pixel - mean) / std`` per channel, pixels in
    [0, 1] (one value for every channel, or one per channel)."""

    mean: list[float] = Field(min_length=1, max_length=3)
    std: list[float] = Field(min_length=1, max_length=3)

    @field_validator("std")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(s <= 0 for s in v):
            raise ValueError(f"must be > 0, got {v}")
        return v

    @model_validator(mode="after")
    def _same_length(self) -> TeacherNormalisation:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values, std {len(self.std)}")
        return self


class TeacherConfig(_Section):
    path: Path
    format: Literal["auto", "export", "torchscript", "state_dict", "onnx"] = "auto"
    factory: str | None = None
    kwargs: dict[str, Any] = {}
    # What images the teacher expects: "normalised" by the training split's per-channel mean
    # and std (what `autostudent teacher train` writes), "unit" pixels in [0, 1] (a model with
    # its normalisation inside, such as an exported student.pt), or its own {mean, std}.
    input: Literal["normalised", "unit"] | TeacherNormalisation = "normalised"

    @field_validator("input", mode="before")
    @classmethod
    def _one_of(cls, v: Any) -> Any:
        # one message, not one per member of the union
        if isinstance(v, dict):
            try:
                return TeacherNormalisation.model_validate(v)
            except ValidationError as exc:
                raise ValueError(describe_error(exc).removeprefix("(top level): ")) from None
        if v not in ("normalised", "unit") and not isinstance(v, TeacherNormalisation):
            raise ValueError(
                f"must be 'normalised', 'unit' or {{mean: [...], std: [...]}}, got {v!r}"
            )
        return v

    # ``path`` as the study file gave it (relative to that file, or absolute), before
    # ``load_config`` resolved it to this machine's file: what results record
    _given: str | None = PrivateAttr(None)

    @property
    def given_path(self) -> str:
        return self._given or str(self.path)


def teacher_input(text: str, flag: str) -> Any:
    """A command line's ``teacher.input``: 'normalised', 'unit' or 'MEAN,…/STD,…' (its own
    per-channel normalisation of [0, 1] pixels) as the study file's value; ``TeacherConfig``
    checks it. ``flag`` names the option in the error."""
    if "/" not in text:
        return text
    mean, _, std = text.partition("/")
    try:
        return {k: [float(v) for v in t.split(",")] for k, t in (("mean", mean), ("std", std))}
    except ValueError:
        raise UserError(f"{flag}: {text!r} is not 'MEAN,…/STD,…' (numbers)") from None


class SpaceConfig(_Section):
    """A built-in space by name, or a space YAML (relative to the study file), narrowed."""

    name: str = "nago"
    overrides: dict[str, Any] = {}

    # Loaded here, not when the search starts: an unknown space or an override that does not fit
    # it is bad input, reported before the data, the teacher or the database are touched.
    @field_validator("name")
    @classmethod
    def _space(cls, v: str, info: ValidationInfo) -> str:
        from autostudent.spaces import is_space_path, load_space

        base = (info.context or {}).get("base")
        if is_space_path(v) and base is not None and not Path(v).is_absolute():
            v = str(Path(base) / v)
        try:
            load_space(v)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("overrides")
    @classmethod
    def _fit_the_space(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from autostudent.spaces import OverrideError, load_space

        if "name" not in info.data:  # the name is wrong: reported on its own
            return v
        try:
            load_space(info.data["name"], v)
        except OverrideError as exc:
            raise ValueError(f"{exc.name}: {exc.reason} (search space {exc.space!r})") from None
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return v


class KDConfig(_Section):
    """The KD settings searched with the architecture (AutoKD): loss choice, T and alpha."""

    losses: list[str] = list(KD_LOSS_NAMES)
    temperature: Range = Range(low=1.0, high=10.0, log=True)
    alpha: Range = Range(low=0.0, high=1.0)

    @field_validator("losses")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("needs at least one loss")
        from autostudent.losses import LOSSES

        unknown = [name for name in v if name not in LOSSES]
        if unknown:
            raise ValueError(f"unknown loss {unknown[0]!r} (known: {', '.join(LOSSES.names())})")
        return v

    # Checked here, not at sampling time: a bad range would otherwise fail every trial of a
    # study already written to the database (T = 0 divides by zero, alpha mixes CE and KD).
    @field_validator("temperature")
    @classmethod
    def _positive_temperature(cls, v: Range) -> Range:
        if v.low <= 0:
            raise ValueError(f"low must be > 0, got {v.low}")
        return v

    @field_validator("alpha")
    @classmethod
    def _mixing_weight(cls, v: Range) -> Range:
        if v.low < 0 or v.high > 1:
            raise ValueError(f"must lie within [0, 1], got [{v.low}, {v.high}]")
        return v


class BudgetConfig(_Section):
    """What one search trial trains: a few epochs over a (subset of the) training split."""

    epochs: int = Field(3, ge=1)
    train_subset: int | None = Field(None, ge=100)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(0.05, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    # validation images at the epochs before the last (the last uses the whole split)
    rung_val_images: int | None = Field(2000, ge=100)
    # before the last epoch a rung reads an exponential moving average of the weights (and
    # BatchNorm statistics) with this decay, not the model swinging at a high learning rate;
    # auto: a decay that spans 1/16 of an epoch (1 - 16/steps; the model itself at <= 16 steps);
    # null: the model itself (studies/results/rung_ema measured all three, and
    # bench_hypervolume/rungauto made auto the default)
    rung_average: float | Literal["auto"] | None = "auto"
    # K > 0: trials train on K fixed crop-and-flip views of each image, with the teacher's
    # outputs on each view cached once (consistent teaching, no teacher forward in a step);
    # 0: the clean images and their cached outputs (see docs/export.md for the measurements)
    teacher_views: int = Field(0, ge=0, le=64)

    @field_validator("rung_average", mode="before")
    @classmethod
    def _rung_average(cls, value: Any) -> Any:
        if value is None or value == "auto":
            return value
        try:
            decay = float(value)
        except (TypeError, ValueError):
            decay = float("nan")
        if isinstance(value, bool) or not 0 < decay < 1:
            raise ValueError(f"a decay between 0 and 1, auto or null, got {value!r}")
        return decay


# a cap given as a fraction of the teacher's own size: teacher/3 is a third of it
_TEACHER_FRACTION = re.compile(r"\s*teacher\s*/\s*(\d+(?:\.\d*)?|\.\d+)\s*")


class CapsConfig(_Section):
    """Hard caps on a student's size: a number, or ``teacher/N``, a fraction of the teacher's
    own (params, FLOPs or latency), counted when the search has loaded the teacher
    (``resolved``): the same study file then caps students of any teacher in proportion."""

    max_params: int | str | None = None
    max_flops: int | str | None = None
    max_latency_ms: float | str | None = None

    @field_validator("max_params", "max_flops", "max_latency_ms", mode="before")
    @classmethod
    def _cap(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, str):
            m = _TEACHER_FRACTION.fullmatch(v)
            if m and float(m[1]) > 0:
                return f"teacher/{m[1]}"
        elif not isinstance(v, bool) and isinstance(v, int | float) and v > 0:
            return v
        raise ValueError(f"a number > 0 or teacher/N (1/N of the teacher's own), got {v!r}")

    @property
    def relative(self) -> bool:
        """Whether a cap is given as ``teacher/N``."""
        return any(isinstance(v, str) for v in self.model_dump().values())

    def resolved(self, teacher: Mapping[str, float]) -> CapsConfig:
        """Every ``teacher/N`` cap as a number: the teacher's own value (its params, FLOPs or
        latency, as the study stores them under ``teacher``) divided by N; counts round down."""
        out = {}
        for o in OBJECTIVES.values():
            cap = getattr(self, o.cap_key) if o.cap_key else None
            if isinstance(cap, str):
                given, own = cap, teacher[o.result_key]
                cap = own / float(given.split("/")[1])
                cap = cap if o.name == "latency_ms" else int(cap)  # params, FLOPs: counts
                if cap <= 0:
                    raise UserError(f"caps.{o.cap_key}: {given} of the teacher's {own:,} is 0")
            if o.cap_key:
                out[o.cap_key] = cap
        return CapsConfig(**out)


class CoverageConfig(_Section):
    """Ours' coverage rules (``sampler/_coverage.py``, docs/sampler.md): a student (same params
    and FLOPs) is trained at most ``max_repeats`` times, and ``gap_share`` of the proposals
    after start-up go to the front's widest empty size gap between ``gap_fractions`` of the
    teacher's size. ``gap_share: 0`` spends every proposal on the hypervolume alone (on the
    FLOPs bench task: 0.006 more hypervolume, a front that reaches fewer sizes). The defaults
    are ``Coverage``'s (tests/test_config.py holds them equal)."""

    max_repeats: int = Field(3, ge=1)
    gap_share: float = Field(1 / 3, ge=0.0, le=1.0)
    gap_fractions: tuple[float, float] = (1 / 50, 1 / 3)
    # True: an empty interval is asked again until a student there reaches the front; False: a
    # gap proposal that trained a student (complete or stopped) fills its size from then on
    retry_gaps: bool = True

    @field_validator("gap_fractions")
    @classmethod
    def _fractions(cls, v: tuple[float, float]) -> tuple[float, float]:
        low, high = v
        if not 0 < low < high <= 1:
            raise ValueError(
                f"must be two fractions of the teacher's size, 0 < low < high <= 1, got {list(v)}"
            )
        return v


class SearchConfig(_Section):
    n_trials: int = Field(40, ge=1)
    workers: int = Field(2, ge=1)
    sampler: Literal["botorch", "gp", "tpe", "nsga2", "random"] = "botorch"
    n_startup_trials: int = Field(10, ge=1)
    objectives: list[Objective] = ["accuracy", "params"]
    # None: "moasha" when the study has several objectives, "asha" when accuracy is the only one
    early_stopping: Literal["moasha", "asha", "none"] | None = None
    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)
    # False: a gap proposal of the sampler's (coverage) trains its full budget; MO-ASHA records it
    # at each rung but does not stop it (a larger student starts slower and lost its rung to a
    # smaller one: the gap rule asked for a size, the rung stopped it before it could show it).
    # None: false where it applies (botorch with moasha or none), true elsewhere (no gap
    # proposals, or ASHA, which cannot tell them apart); studies/results/bench_hypervolume/keepgap
    prune_gap_proposals: bool | None = None
    # seconds of wall clock for one run of ``search`` (each run, a resumed one too, gets its own,
    # as Optuna's ``optimize(timeout=)``): no trial starts after it, the running ones finish;
    # the search ends at n_trials or at the timeout, whichever comes first. None: no limit.
    timeout: float | None = Field(None, gt=0)
    coverage: CoverageConfig = CoverageConfig()

    @field_validator("objectives")
    @classmethod
    def _accuracy_first(cls, v: list[str]) -> list[str]:
        if not v or v[0] != "accuracy" or len(set(v)) != len(v):
            raise ValueError("must start with 'accuracy' and name each objective once")
        return v

    @model_validator(mode="after")
    def _coverage_is_ours(self) -> SearchConfig:
        # not "was it given": a study's stored config (re-read by export) holds the defaults
        if self.sampler != "botorch" and self.coverage != CoverageConfig():
            raise ValueError(f"coverage: only the botorch sampler has coverage rules, not "
                             f"{self.sampler!r}")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _default_early_stopping(self) -> SearchConfig:
        if self.early_stopping is None:
            self.early_stopping = "moasha" if len(self.objectives) > 1 else "asha"
        return self

    @model_validator(mode="after")
    def _gap_proposals_need_moasha(self) -> SearchConfig:
        applies = self.sampler == "botorch" and self.early_stopping != "asha"
        if self.prune_gap_proposals is None:
            self.prune_gap_proposals = not applies
        if not self.prune_gap_proposals and not applies:
            raise ValueError(
                "prune_gap_proposals: false needs the botorch sampler (it makes the gap "
                "proposals) and early_stopping moasha or none (asha cannot tell them apart), "
                f"not {self.sampler} with {self.early_stopping}"
            )
        return self


class ResourcesConfig(_Section):
    device: str = "cpu"
    cpus_per_trial: int = Field(1, ge=1)
    # None: 1 with a cuda device (a whole GPU a trial), 0 on the CPU
    gpus_per_trial: float | None = Field(None, ge=0)
    # what measures latency_ms (objective, cap, export): torch itself or onnxruntime
    latency_runtime: str = "torch"

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        from autostudent.device import check_device_name

        check_device_name(v)
        return v

    @field_validator("latency_runtime")
    @classmethod
    def _runtime(cls, v: str) -> str:
        from autostudent.measure import LATENCY_RUNTIMES

        if v not in LATENCY_RUNTIMES:
            raise ValueError(f"unknown {v!r} (known: {', '.join(LATENCY_RUNTIMES)})")
        return v

    @model_validator(mode="after")
    def _gpus_follow_the_device(self) -> ResourcesConfig:
        from autostudent.device import check_gpus_per_trial

        self.gpus_per_trial = check_gpus_per_trial(self.device, self.gpus_per_trial)
        return self


class StudyConfig(_Section):
    study: str = Field(min_length=1)
    storage: str | None = None
    seed: int = Field(0, ge=0)
    cache_dir: Path | None = None
    data: DataConfig = DataConfig()
    teacher: TeacherConfig
    space: SpaceConfig = SpaceConfig()
    kd: KDConfig = KDConfig()
    budget: BudgetConfig = BudgetConfig()
    caps: CapsConfig = CapsConfig()
    search: SearchConfig = SearchConfig()
    # built when a study is, not at import: its validators import torch (autostudent.device)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.study}.db"


def _relative_to(base: Path, value: Path | None) -> Path | None:
    if value is None or value.is_absolute():
        return value
    return (base / value).resolve()


def find_config(name_or_path: str | Path) -> tuple[Path, bool]:
    """The study file to read, and whether it is a built-in study (`smoke`, `fashion_mnist`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path, False
    found = None if path.suffix or len(path.parts) > 1 else builtin.find("studies", str(path))
    if found is None:
        known = ", ".join(builtin.names("studies"))
        raise UserError(f"{path}: no such file (or name a built-in study: {known})")
    return found, True


def load_config(name_or_path: str | Path) -> StudyConfig:
    """Read and validate a study YAML, or a built-in study by name.

    Relative paths are taken from the file's folder; a built-in study's inputs (its teacher)
    are found inside the package, and what it writes (storage, cache_dir) goes to the current
    folder, never into the installed package.
    """
    path, is_builtin = find_config(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} is not valid YAML") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of sections at the top level")
    base = path.resolve().parent
    try:
        config = StudyConfig.model_validate(raw, context={"base": base})
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_error(exc)}") from None
    out = Path.cwd() if is_builtin else base
    config.data.root = _relative_to(base, config.data.root)
    config.teacher._given = str(config.teacher.path)
    config.teacher.path = _relative_to(base, config.teacher.path)
    config.cache_dir = _relative_to(out, config.cache_dir)
    if (
        config.storage
        and config.storage.startswith("sqlite:///")
        and not config.storage.startswith("sqlite:////")
    ):
        config.storage = "sqlite:///" + str(out / config.storage.removeprefix("sqlite:///"))
    return config


def describe_error(exc: ValidationError) -> str:
    """The first pydantic error as 'field.path: message' on one line."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] != "value_error" and isinstance(err.get("input"), str | int | float):
        msg = f"{msg}, got {err['input']!r}"  # e.g. which sampler name was not one of the list
    return f"{where}: {msg}"
