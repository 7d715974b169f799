"""Study configs: defaults, paths relative to the YAML file, and one-line errors naming the
file and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autostudent.config import KD_LOSS_NAMES, StudyConfig, load_config
from autostudent.errors import UserError


def write(folder: Path, text: str, name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_minimal_config_gets_the_defaults(tmp_path):
    path = write(
        tmp_path,
        """
        study: fm
        teacher:
          path: teacher.pt2
    """,
    )
    config = load_config(path)
    assert config.study == "fm"
    assert config.teacher.path == tmp_path.resolve() / "teacher.pt2"
    assert config.teacher.format == "auto"
    assert config.data.name == "fashion-mnist" and config.data.root is None
    assert config.kd.losses == list(KD_LOSS_NAMES)
    assert (config.kd.temperature.low, config.kd.temperature.high) == (1.0, 10.0)
    assert config.search.objectives == ["accuracy", "params"]
    assert config.budget.epochs == 3 and config.caps.max_params is None
    assert config.budget.rung_average == "auto"
    assert config.resources.device == "cpu"
    assert config.storage is None and config.storage_url() == "sqlite:///fm.db"


def test_a_stored_config_of_optunas_sampler_reads_back(tmp_path):
    # export re-validates the config the search stored, defaults included
    path = write(tmp_path, "study: fm\nteacher: {path: t.pt2}\nsearch: {sampler: tpe}\n")
    stored = load_config(path).model_dump(mode="json")
    assert StudyConfig.model_validate(stored).search.coverage.gap_share == pytest.approx(1 / 3)


def test_the_coverage_defaults_are_the_samplers():
    from dataclasses import fields

    from autostudent.config import CoverageConfig
    from autostudent.sampler import Coverage

    defaults = {f.name: f.default for f in fields(Coverage)}
    assert CoverageConfig().model_dump() == {k: defaults[k] for k in CoverageConfig.model_fields}


@pytest.mark.parametrize(("text", "value"), [("auto", "auto"), ("0.9", 0.9), ("null", None)])
def test_rung_average_is_a_decay_auto_or_null(tmp_path, text, value):
    path = write(
        tmp_path, f"study: fm\nteacher: {{path: t.pt2}}\nbudget: {{rung_average: {text}}}\n"
    )
    assert load_config(path).budget.rung_average == value


def test_relative_paths_are_taken_from_the_yaml_folder(tmp_path, monkeypatch):
    folder = tmp_path / "studies"
    folder.mkdir()
    write(
        folder,
        """
        study: fm
        storage: sqlite:///fm.db
        cache_dir: cache
        data: {name: npz, root: ../data/fm.npz}
        teacher: {path: /abs/teacher.pt2}
    """,
    )
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    config = load_config(Path("studies") / "study.yaml")
    here = folder.resolve()
    assert config.data.root == tmp_path.resolve() / "data" / "fm.npz"
    assert config.cache_dir == here / "cache"
    assert config.teacher.path == Path("/abs/teacher.pt2")
    assert config.storage == f"sqlite:///{here / 'fm.db'}"


def test_the_teacher_path_is_kept_as_the_study_file_gives_it(tmp_path):
    """What results record (given_path); ``path`` itself is this machine's file."""
    for given, resolved in (
        ("teachers/t.pt2", tmp_path.resolve() / "teachers" / "t.pt2"),
        ("/abs/t.pt2", Path("/abs/t.pt2")),
    ):
        path = write(tmp_path, f"study: fm\nteacher: {{path: {given}}}\n")
        config = load_config(path)
        assert config.teacher.path == resolved
        assert config.teacher.given_path == given
        # the CLI's overrides copy the config: the given path survives
        assert config.model_copy(update={"seed": 3}).teacher.given_path == given


def test_absolute_and_server_storage_urls_are_kept(tmp_path):
    for url in ("sqlite:////var/studies/fm.db", "postgresql://127.0.0.1:5432/test"):
        path = write(tmp_path, f"study: fm\nstorage: {url}\nteacher: {{path: t.pt2}}\n")
        assert load_config(path).storage == url


@pytest.mark.parametrize(
    ("text", "field", "what"),
    [
        ("budget: {epoch: 3}", "budget.epoch", "unknown field"),
        ("sutdy: typo", "sutdy", "unknown field"),
        ("budget: {epochs: many}", "budget.epochs", "integer"),
        ("budget: {epochs: 0}", "budget.epochs", "greater than or equal to 1"),
        ("kd: {temperature: {low: 5, high: 1}}", "kd.temperature", "low 5.0 > high 1.0"),
        ("kd: {temperature: {low: 0, high: 4}}", "kd.temperature", "> 0"),
        ("kd: {alpha: {low: 0, high: 2}}", "kd.alpha", "[0, 1]"),
        ("kd: {losses: [kd, fancy]}", "kd.losses", "unknown loss 'fancy'"),
        ("kd: {losses: []}", "kd.losses", "at least one"),
        ("search: {objectives: [params, accuracy]}", "search.objectives", "start with 'accuracy'"),
        ("search: {objectives: [accuracy, speed]}", "search.objectives.1", "'latency_ms'"),
        ("search: {sampler: grid}", "search.sampler", "'botorch'"),
        ("resources: {device: tpu}", "resources.device", "tpu"),
        ("teacher: {path: t.pt2, format: tflite}", "teacher.format", "'torchscript'"),
        ("teacher: {}", "teacher.path", "required"),
        ("teacher: {path: t.pt2, input: raw}", "teacher.input", "'unit' or {mean: [...], std"),
        ("teacher: {path: t.pt2, input: {mean: [0.5], std: [0]}}", "teacher.input", "std: must"),
        (
            "teacher: {path: t.pt2, input: {mean: [0.5, 0.4], std: [1]}}",
            "teacher.input",
            "2 values",
        ),
        ("teacher: {path: t.pt2, input: {mean: [0.5]}}", "teacher.input", "std: Field required"),
        ("search: {coverage: {gap_share: 2}}", "search.coverage.gap_share", "less than or equal"),
        ("search: {coverage: {max_repeats: 0}}", "search.coverage.max_repeats", "greater than"),
        (
            "search: {coverage: {gap_fractions: [0.3, 0.1]}}",
            "search.coverage.gap_fractions",
            "0 < low < high <= 1",
        ),
        ("search: {sampler: tpe, coverage: {gap_share: 0}}", "search", "only the botorch"),
        ("budget: {rung_average: 1}", "budget.rung_average", "between 0 and 1, auto or null"),
        ("budget: {rung_average: always}", "budget.rung_average", "got 'always'"),
        ("budget: {rung_average: true}", "budget.rung_average", "got True"),
        ("caps: {max_params: half}", "caps.max_params", "a number > 0 or teacher/N"),
        ("caps: {max_flops: teacher/0}", "caps.max_flops", "got 'teacher/0'"),
        ("caps: {max_params: 0}", "caps.max_params", "got 0"),
        ("caps: {max_latency_ms: true}", "caps.max_latency_ms", "got True"),
    ],
)
def test_invalid_field_is_named_in_one_line(tmp_path, user_error, text, field, what):
    extra = "" if text.startswith("teacher") else "teacher: {path: t.pt2}\n"
    path = write(tmp_path, f"study: fm\n{extra}{text}\n")
    message = user_error(lambda: load_config(path), what)
    assert message.startswith(f"{path}: {field}: "), message


def test_a_cap_as_a_fraction_of_the_teachers_size(tmp_path):
    """``teacher/N`` caps a student at 1/N of the teacher's own params, FLOPs or latency, counted
    once the teacher is loaded; counts round down, a number stays as given."""
    from autostudent.trial import Caps

    text = "caps: {max_params: teacher/3, max_flops: 5000, max_latency_ms: ' teacher / 2.5 '}"
    path = write(tmp_path, f"study: fm\nteacher: {{path: t.pt2}}\n{text}\n")
    caps = load_config(path).caps
    assert caps.relative
    assert caps.model_dump() == {
        "max_params": "teacher/3",
        "max_flops": 5000,
        "max_latency_ms": "teacher/2.5",
    }
    with pytest.raises(ValueError, match="not resolved"):
        Caps.of(caps)  # a number is needed where a student is checked
    teacher = {"params": 308_074, "flops": 10_000, "latency_ms": 3.0}
    resolved = caps.resolved(teacher)
    assert not resolved.relative
    assert Caps.of(resolved) == Caps(max_params=102_691, max_flops=5000, max_latency_ms=1.2)
    with pytest.raises(UserError, match=r"caps.max_params: teacher/3 of the teacher's 2 is 0"):
        caps.resolved({**teacher, "params": 2})
    # what the search stores reads back (export re-validates it)
    assert (
        StudyConfig.model_validate(
            {"study": "fm", "teacher": {"path": "t.pt2"}, "caps": resolved.model_dump()}
        ).caps
        == resolved
    )


def test_missing_teacher_section(tmp_path, user_error):
    path = write(tmp_path, "study: fm\n")
    assert user_error(lambda: load_config(path)).startswith(f"{path}: teacher: ")


def test_bad_yaml_names_the_file_and_line(tmp_path, user_error):
    path = write(tmp_path, "study: fm\nteacher:\n  path: [unclosed\n")
    user_error(lambda: load_config(path), str(path), "line", "not valid YAML")


@pytest.mark.parametrize("text", ["", "- study: fm\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path, user_error, text):
    path = write(tmp_path, text)
    user_error(lambda: load_config(path), str(path), "mapping")


def test_missing_file(tmp_path, user_error):
    path = tmp_path / "nope.yaml"
    user_error(lambda: load_config(path), str(path), "no such file")
