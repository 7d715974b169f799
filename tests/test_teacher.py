"""The fixed teacher: three file formats, penultimate features, checks against the data, and the
zoo that `autostudent teacher train` draws from."""

from __future__ import annotations

import copy
import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from autostudent.datasets import Data
from autostudent.measure import count_params
from autostudent.teacher import (
    TeacherSource,
    check_teacher,
    file_sha256,
    load_teacher,
    save_teacher,
)
from autostudent.training import accuracy
from autostudent.zoo import TEACHERS, ResNet

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
]


def probe(data: Data, n: int = 7) -> torch.Tensor:
    return torch.from_numpy(data.x_val[:n])


def assert_same_outputs(loaded, module: nn.Module, x: torch.Tensor, features: torch.Tensor) -> None:
    with torch.inference_mode():
        logits, feats = loaded.forward_with_features(x)
        expected = module(x)
    torch.testing.assert_close(logits, expected)
    assert loaded.has_features
    torch.testing.assert_close(feats, features)


def zoo_state_dict_source(path: Path, width: int) -> TeacherSource:
    return TeacherSource(path, factory="zoo:resnet8", kwargs=(("width", width),))


def width_of(net: nn.Module) -> int:
    return net.body[0].out_channels


# --- formats -------------------------------------------------------------------------------


def test_export_archive_gives_the_module_logits_and_body_features(
    teacher_file, zoo_teacher, digits
):
    teacher = load_teacher(TeacherSource(teacher_file))
    assert teacher.format == "export"
    assert teacher.params() == count_params(zoo_teacher)
    for n in (1, 7):  # the batch dimension is dynamic, batch 1 included
        x = probe(digits, n)
        with torch.inference_mode():
            body = zoo_teacher.body(x)
        assert_same_outputs(teacher, zoo_teacher, x, body)


def test_torchscript_gives_the_module_logits_and_body_features(tmp_path, zoo_teacher, digits):
    path = tmp_path / "teacher.ts"
    torch.jit.script(zoo_teacher).save(str(path))
    teacher = load_teacher(TeacherSource(path))
    assert teacher.format == "torchscript"
    x = probe(digits)
    with torch.inference_mode():
        body = zoo_teacher.body(x)
    assert_same_outputs(teacher, zoo_teacher, x, body)


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "checkpoint"])
def test_state_dict_with_zoo_factory_gives_the_module_outputs(
    tmp_path, zoo_teacher, digits, wrapped
):
    path = tmp_path / "teacher.pt"
    state = zoo_teacher.state_dict()
    torch.save({"state_dict": state, "epoch": 2} if wrapped else state, path)
    teacher = load_teacher(
        zoo_state_dict_source(path, width_of(zoo_teacher)),
        input_shape=digits.input_shape,
        num_classes=digits.num_classes,
    )
    assert teacher.format == "state_dict"
    assert not teacher.module.training
    x = probe(digits)
    with torch.inference_mode():
        body = zoo_teacher.body(x)
    assert_same_outputs(teacher, zoo_teacher, x, body)


def test_state_dict_of_a_plain_module_gives_the_last_linear_input(tmp_path, monkeypatch, digits):
    """A user's own architecture without body/head, found as 'module:factory'."""
    (tmp_path / "plain_net.py").write_text(
        textwrap.dedent("""
        from torch import nn

        def make(hidden=16):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 10))
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import plain_net

    torch.manual_seed(0)
    original = plain_net.make(hidden=12)
    path = tmp_path / "plain.pt"
    torch.save(original.state_dict(), path)

    teacher = load_teacher(TeacherSource(path, factory="plain_net:make", kwargs=(("hidden", 12),)))
    x = probe(digits)
    with torch.inference_mode():
        hidden = original[2](original[1](original[0](x)))
    assert_same_outputs(teacher, original, x, hidden)
    assert hidden.shape == (len(x), 12)


def test_torchscript_without_body_and_head_has_no_features(tmp_path, digits):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    path = tmp_path / "plain.ts"
    torch.jit.script(module).save(str(path))
    teacher = load_teacher(TeacherSource(path))
    assert teacher.format == "torchscript"
    assert not teacher.has_features
    x = probe(digits)
    with torch.inference_mode():
        logits, feats = teacher.forward_with_features(x)
        expected = module(x)
    assert feats is None
    torch.testing.assert_close(logits, expected)


# --- checks against the data ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8)])
def test_check_teacher_rejects_a_wrong_input_shape(teacher_file, shape, user_error):
    teacher = load_teacher(TeacherSource(teacher_file))
    user_error(
        lambda: check_teacher(teacher, shape, 10), "teacher.path", str(teacher_file), str(shape)
    )


def test_check_teacher_rejects_a_wrong_channel_count_for_eager_modules(
    tmp_path, zoo_teacher, user_error
):
    path = tmp_path / "teacher.ts"
    torch.jit.script(zoo_teacher).save(str(path))
    teacher = load_teacher(TeacherSource(path))
    user_error(lambda: check_teacher(teacher, (3, 8, 8), 10), "teacher.path", str(path))


def test_check_teacher_rejects_a_wrong_class_count(teacher_file, digits, user_error):
    teacher = load_teacher(TeacherSource(teacher_file))
    check_teacher(teacher, digits.input_shape, digits.num_classes)  # the right data passes
    user_error(
        lambda: check_teacher(teacher, digits.input_shape, 7),
        "teacher.path",
        str(teacher_file),
        "7 classes",
    )


# --- bad files --------------------------------------------------------------------------------


def test_missing_file(tmp_path, user_error):
    path = tmp_path / "nope.pt2"
    message = user_error(lambda: load_teacher(TeacherSource(path)), "teacher.path", str(path))
    assert "does not exist" in message


def test_file_that_is_not_an_archive(tmp_path, user_error):
    path = tmp_path / "teacher.pt2"
    path.write_bytes(b"not a zip archive at all\n" * 10)
    message = user_error(lambda: load_teacher(TeacherSource(path)), "teacher.path", str(path))
    assert "is neither a PyTorch archive nor an ONNX model" in message


def test_truncated_export_archive(tmp_path, teacher_file, user_error):
    path = tmp_path / "teacher.pt2"
    path.write_bytes(teacher_file.read_bytes()[: teacher_file.stat().st_size // 2])
    user_error(lambda: load_teacher(TeacherSource(path)), "teacher.path", str(path))


def test_state_dict_without_factory(tmp_path, zoo_teacher, user_error):
    path = tmp_path / "teacher.pt"
    torch.save(zoo_teacher.state_dict(), path)
    user_error(lambda: load_teacher(TeacherSource(path)), "teacher.factory", str(path))


@pytest.mark.parametrize("factory", ["zoo:nope", "no_such_module_here:make", "no_colon"])
def test_unknown_factory(tmp_path, zoo_teacher, factory, user_error):
    path = tmp_path / "teacher.pt"
    torch.save(zoo_teacher.state_dict(), path)
    user_error(
        lambda: load_teacher(TeacherSource(path, factory=factory)),
        "teacher.factory",
        factory.split(":")[-1],
    )


def test_state_dict_that_does_not_fit_the_factory(tmp_path, zoo_teacher, digits, user_error):
    path = tmp_path / "teacher.pt"
    torch.save(zoo_teacher.state_dict(), path)
    source = zoo_state_dict_source(path, 2 * width_of(zoo_teacher))
    user_error(
        lambda: load_teacher(source, input_shape=digits.input_shape, num_classes=10),
        "teacher.path",
        str(path),
        "does not fit",
    )


def test_state_dict_loading_refuses_pickled_code(tmp_path, digits, user_error):
    """weights_only: a pickle that would call a function on load is rejected, not executed."""
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "teacher.pt"
    torch.save({"state_dict": {"head.weight": torch.zeros(1)}, "extra": Payload()}, path)
    message = user_error(
        lambda: load_teacher(
            zoo_state_dict_source(path, 8), input_shape=digits.input_shape, num_classes=10
        ),
        "teacher.path",
        str(path),
        "weights_only",
    )
    assert "\x1b" not in message  # torch's coloured multi-line advice is not passed on
    assert not marker.exists()
    # The file really is dangerous: an unrestricted load runs the payload.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_sha256_is_the_file_content(tmp_path, teacher_file, zoo_teacher, digits):
    copied = tmp_path / "copy.pt2"
    shutil.copy(teacher_file, copied)
    first = load_teacher(TeacherSource(teacher_file))
    assert load_teacher(TeacherSource(copied)).sha256 == first.sha256 == file_sha256(teacher_file)

    changed = copy.deepcopy(zoo_teacher)
    with torch.no_grad():
        changed.head.bias += 1.0
    save_teacher(changed, copied, digits.input_shape)
    assert load_teacher(TeacherSource(copied)).sha256 != first.sha256


def test_save_teacher_leaves_only_the_archive(tmp_path, zoo_teacher, digits):
    path = tmp_path / "nested" / "t.pt2"
    save_teacher(copy.deepcopy(zoo_teacher), path, digits.input_shape)
    assert [p.name for p in path.parent.iterdir()] == ["t.pt2"]


# --- zoo --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEACHERS.names())
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_zoo_nets_are_body_then_linear_head(name, shape):
    net = TEACHERS.get(name)(shape[0], 7, width=4).eval()
    x = torch.randn(3, *shape)
    with torch.inference_mode():
        feats = net.body(x)
        torch.testing.assert_close(net(x), net.head(feats))
    assert feats.shape == (3, 16)  # pooled, 4 x the first stage's width
    assert isinstance(net, ResNet)


def test_zoo_depths_grow_with_the_name():
    names = ("resnet8", "resnet14", "resnet20")
    sizes = [count_params(TEACHERS.get(name)(1, 10, width=8)) for name in names]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_train_teacher_learns_and_returns_eval_mode(zoo_teacher, digits):
    assert not zoo_teacher.training
    assert accuracy(zoo_teacher, digits.x_val, digits.y_val) > 0.3  # chance is 0.1


class _Killed(Exception):
    pass


def _kill_after(epoch: int):
    def log(line: str) -> None:
        if line.startswith(f"epoch {epoch}/"):
            raise _Killed  # after the epoch's checkpoint, as a kill between epochs would be

    return log


def test_a_killed_teacher_training_resumes_to_the_uninterrupted_teacher(tmp_path, digits):
    """The checkpoint holds weights, momentum, step count and the augmentation stream: epoch 3
    after a resume is the epoch 3 of a run that never stopped, to the last bit."""
    from autostudent.zoo import train_teacher

    args = dict(epochs=3, seed=1, width=4, batch_size=256)
    whole = train_teacher("resnet8", digits, **args, log=lambda line: None)
    ckpt = tmp_path / "t.pt2.partial"
    with pytest.raises(_Killed):
        train_teacher("resnet8", digits, **args, checkpoint=ckpt, log=_kill_after(2))
    lines: list[str] = []
    resumed = train_teacher("resnet8", digits, **args, checkpoint=ckpt, log=lines.append)
    assert lines[0] == f"resuming after epoch 2/3 from {ckpt}" and len(lines) == 2
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_teacher_checkpoint_of_other_options_is_refused(tmp_path, digits, user_error):
    from autostudent.zoo import train_teacher

    ckpt = tmp_path / "t.pt2.partial"
    with pytest.raises(_Killed):
        train_teacher("resnet8", digits, epochs=2, seed=0, width=4, checkpoint=ckpt,
                      log=_kill_after(1))  # fmt: skip
    user_error(
        lambda: train_teacher("resnet8", digits, epochs=3, seed=0, width=4, checkpoint=ckpt),
        str(ckpt), "epochs 2, now 3",
    )  # fmt: skip
    ckpt.write_bytes(b"not a checkpoint")
    user_error(
        lambda: train_teacher("resnet8", digits, epochs=2, seed=0, width=4, checkpoint=ckpt),
        str(ckpt), "not a teacher-training checkpoint",
    )  # fmt: skip


def test_teacher_train_leaves_only_the_teacher(tmp_path, cli):
    out = tmp_path / "new" / "t.pt2"  # a folder that does not exist yet
    code, _out, err = cli("teacher", "train", "--data", "digits", "--width", "4", "--epochs", "1",
                          "--val-fraction", "0.2", "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == ["t.pt2"]


# --- the images the teacher is fed (teacher.input) ----------------------------------------


class _OwnNormalisation(nn.Module):
    """A teacher trained on other images than the data's normalised ones: it takes pixels
    normalised by its own (mean, std) — (0, 1) is pixels in [0, 1], a model with its
    normalisation inside — and holds the zoo teacher, which wants the data's normalisation."""

    def __init__(self, inner: nn.Module, data: Data, mean: float, std: float):
        super().__init__()
        self.inner = inner
        self.own = (mean, std)
        self.register_buffer("data_mean", torch.tensor(data.mean).view(1, -1, 1, 1))
        self.register_buffer("data_std", torch.tensor(data.std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x * self.own[1] + self.own[0]
        return self.inner((pixels - self.data_mean) / self.data_std)


@pytest.mark.parametrize(
    ("own", "expects"),
    [((0.0, 1.0), "unit"), ((0.5, 0.25), ((0.5,), (0.25,)))],
    ids=["unit", "own-mean-std"],
)
def test_a_teacher_is_fed_the_images_it_expects(tmp_path, zoo_teacher, digits, own, expects):
    path = tmp_path / "teacher.ts"
    torch.jit.script(_OwnNormalisation(zoo_teacher, digits, *own).eval()).save(str(path))
    stats = (digits.mean, digits.std)
    fed = load_teacher(TeacherSource(path, input=expects), normalisation=stats)
    plain = load_teacher(TeacherSource(path), normalisation=stats)
    x = probe(digits, 50)
    with torch.inference_mode():
        expected = zoo_teacher(x)
        torch.testing.assert_close(fed.forward_with_features(x)[0], expected)
        # fed the data's normalised images as they are, it computes something else
        assert not torch.allclose(plain.forward_with_features(x)[0], expected, atol=1e-3)
    assert fed.accuracy(digits)[0] == pytest.approx(
        accuracy(zoo_teacher, digits.x_val, digits.y_val)
    )
    # the file is the same teacher; what it computes on the data is not: caches key on identity
    assert fed.sha256 == plain.sha256 == plain.identity
    assert fed.identity != fed.sha256
    assert fed.input == ("unit" if expects == "unit" else "mean [0.5] std [0.25]")


def test_a_teacher_normalisation_of_other_channels_is_one_line(tmp_path, teacher_file, user_error):
    source = TeacherSource(teacher_file, input=((0.5, 0.5, 0.5), (0.2, 0.2, 0.2)))
    user_error(
        lambda: load_teacher(source, normalisation=((0.3,), (0.4,))),
        "teacher.input.mean: 3 values, the data has 1 channel",
    )


def test_teacher_eval_takes_the_input_and_names_a_bad_one(tmp_path, zoo_teacher, digits, cli):
    path = tmp_path / "teacher.ts"
    torch.jit.script(_OwnNormalisation(zoo_teacher, digits, 0.0, 1.0).eval()).save(str(path))
    args = ("teacher", "eval", str(path), "--data", "digits", "--val-fraction", "0.2", "--json")
    code, out, err = cli(*args, "--input", "unit")
    assert code == 0, err
    result = json.loads(out)
    assert result["input"] == "unit"
    assert result["val_accuracy"] == pytest.approx(
        accuracy(zoo_teacher, digits.x_val, digits.y_val)
    )
    code, out, _err = cli(*args, "--input", "0,/1")
    assert code == 2 and out == ""
    for bad, says in [
        ("raw", "--input: must be 'normalised', 'unit' or {mean: [...], std: [...]}, got 'raw'"),
        ("0.5/0", "--input: std: must be > 0"),
        ("0.5,0.4/0.2", "--input: mean has 2 values, std 1"),
        ("a/b", "--input: 'a/b' is not 'MEAN,…/STD,…' (numbers)"),
    ]:
        code, _out, err = cli(*args, "--input", bad)
        assert code == 2, bad
        assert says in err and len(err.strip().splitlines()) == 1, err


def test_a_study_feeds_its_teacher_as_teacher_input_says_and_keeps_to_it(
    tmp_path, teacher_file, zoo_teacher, digits, user_error
):
    import optuna

    from autostudent import study as studydb
    from autostudent.config import StudyConfig
    from autostudent.driver import prepare
    from autostudent.teacher_outputs import teacher_outputs

    inside = tmp_path / "inside.ts"  # a teacher with its normalisation inside: pixels in [0, 1]
    torch.jit.script(_OwnNormalisation(zoo_teacher, digits, 0.0, 1.0).eval()).save(str(inside))

    def prepared(path: Path, expects: str):
        raw = {"study": "s", "storage": f"sqlite:///{tmp_path / 's.db'}",
               "data": {"name": "digits", "val_fraction": 0.2},
               "teacher": {"path": str(path), "input": expects},
               "kd": {"losses": ["kd"]}}  # fmt: skip
        # through JSON, as export's pool workers and export itself read the stored config
        return prepare(StudyConfig.model_validate_json(StudyConfig(**raw).model_dump_json()))

    p = prepared(inside, "unit")
    assert p.teacher.input == "unit"
    fed = teacher_outputs(p.teacher, p.data, tmp_path / "cache")
    plain = teacher_outputs(
        prepared(teacher_file, "normalised").teacher, p.data, tmp_path / "cache"
    )
    torch.testing.assert_close(fed.logits, plain.logits)
    assert fed.val_accuracy == plain.val_accuracy and fed.path != plain.path
    # a study knows how its teacher was fed; one created before teacher.input fed it normalised
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("teacher", {"sha256": p.teacher.sha256})
    studydb.check_identity(
        study, "teacher", {"sha256": p.teacher.sha256, "input": "normalised"}, "t"
    )
    user_error(
        lambda: studydb.check_identity(
            study, "teacher", {"sha256": p.teacher.sha256, "input": "unit"}, "teacher.path"
        ),
        "teacher.input: study",
        "fed its teacher normalised images, the config says unit; use a new --study name",
    )


# --- an ONNX teacher (trained in another framework) ----------------------------------------


def onnx_teacher_file(tmp_path: Path, module: nn.Module, data: Data, batch: int | None = None):
    """``module`` as an ONNX file: with a dynamic batch, or exported for a fixed ``batch``."""
    from autostudent.onnx_export import to_onnx

    path = tmp_path / "teacher.onnx"
    if batch is None:
        path.write_bytes(to_onnx(module.eval(), data.input_shape))
    else:
        import warnings

        with warnings.catch_warnings():  # the legacy exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (torch.zeros(batch, *data.input_shape),), str(path),
                              dynamo=False, input_names=["x"], output_names=["y"])  # fmt: skip
    return path


def test_an_onnx_teacher_gives_the_module_outputs_size_and_features(tmp_path, zoo_teacher, digits):
    from autostudent.measure import count_flops, measure_latency

    teacher = load_teacher(TeacherSource(onnx_teacher_file(tmp_path, zoo_teacher, digits)))
    assert teacher.format == "onnx" and teacher.has_features
    x = probe(digits, 300)  # more than one batch of anything
    with torch.inference_mode():
        logits, feats = teacher.forward_with_features(x)
        torch.testing.assert_close(logits, zoo_teacher(x), atol=1e-4, rtol=1e-4)
        # the input of its last Gemm: the body's output, as for the torch teacher
        torch.testing.assert_close(feats, zoo_teacher.body(x), atol=1e-4, rtol=1e-4)
    # FLOPs counted from its graph as torch's counter counts the module's
    shape = digits.input_shape
    assert count_flops(teacher.module, shape) == count_flops(zoo_teacher, shape)
    # parameters: its initializers as torch counts them (no BatchNorm statistics)
    assert teacher.params() == count_params(zoo_teacher)
    assert measure_latency("onnxruntime", teacher.module, shape) > 0
    assert teacher.accuracy(digits)[0] == pytest.approx(
        accuracy(zoo_teacher, digits.x_val, digits.y_val), abs=1 / len(digits.x_val)
    )


def test_an_onnx_teacher_of_a_fixed_batch_runs_any_batch(tmp_path, zoo_teacher, digits):
    path = onnx_teacher_file(tmp_path, zoo_teacher, digits, batch=4)
    teacher = load_teacher(TeacherSource(path))
    check_teacher(teacher, digits.input_shape, digits.num_classes)
    for n in (1, 7):
        x = probe(digits, n)
        with torch.inference_mode():
            torch.testing.assert_close(
                teacher.forward_with_features(x)[0], zoo_teacher(x), atol=1e-4, rtol=1e-4
            )


class _ChannelsLast(nn.Module):
    """A teacher as TensorFlow lays images out, (N, H, W, C): what tf2onnx keeps."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.permute(0, 3, 1, 2))


def test_a_channels_last_onnx_teacher_gets_channels_last_batches(tmp_path, zoo_teacher, digits):
    import warnings

    path = tmp_path / "nhwc.onnx"
    shape = digits.input_shape
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice
        warnings.simplefilter("ignore")
        example = torch.zeros(2, *shape[1:], shape[0])
        torch.onnx.export(_ChannelsLast(zoo_teacher).eval(), (example,), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})  # fmt: skip
    teacher = load_teacher(TeacherSource(path))
    check_teacher(teacher, shape, digits.num_classes)
    x = probe(digits, 9)
    with torch.inference_mode():
        torch.testing.assert_close(
            teacher.forward_with_features(x)[0], zoo_teacher(x), atol=1e-4, rtol=1e-4
        )


def test_teacher_eval_reads_an_onnx_teacher(tmp_path, zoo_teacher, digits, cli):
    path = onnx_teacher_file(tmp_path, zoo_teacher, digits)
    code, out, err = cli("teacher", "eval", str(path), "--data", "digits", "--val-fraction",
                         "0.2", "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["format"] == "onnx"
    assert result["val_accuracy"] == pytest.approx(
        accuracy(zoo_teacher, digits.x_val, digits.y_val), abs=1 / len(digits.x_val)
    )


def test_a_study_reads_an_onnx_teacher_with_its_features(tmp_path, zoo_teacher, digits):
    from autostudent.config import StudyConfig
    from autostudent.driver import prepare, teacher_identity
    from autostudent.measure import count_flops
    from autostudent.teacher_outputs import teacher_outputs

    path = onnx_teacher_file(tmp_path, zoo_teacher, digits)
    config = StudyConfig(study="s", storage=f"sqlite:///{tmp_path / 's.db'}",
                         data={"name": "digits", "val_fraction": 0.2},
                         teacher={"path": str(path)}, kd={"losses": ["kd", "rkd"]},
                         resources={"latency_runtime": "onnxruntime"})  # fmt: skip
    p = prepare(config)  # rkd needs the penultimate features: the ONNX teacher gives them
    outputs = teacher_outputs(p.teacher, p.data, tmp_path / "cache")
    assert outputs.features is not None and outputs.features.shape == (len(digits.x_train), 32)
    identity = teacher_identity(p, outputs)
    assert identity["format"] == "onnx" and identity["params"] == count_params(zoo_teacher)
    assert identity["flops"] == count_flops(zoo_teacher, digits.input_shape)
    assert identity["latency_ms"] > 0


def test_status_says_how_the_teacher_is_fed_and_when_it_is_near_chance(tmp_path, cli):
    import optuna

    url = f"sqlite:///{tmp_path / 's.db'}"
    for name, val, fed in (("wrong", 0.1758, "unit"), ("right", 0.9322, "normalised")):
        study = optuna.create_study(
            storage=url, study_name=name, directions=["maximize", "minimize"]
        )
        study.set_user_attr("teacher", {"params": 308_074, "val_accuracy": val, "input": fed})
        study.set_user_attr("data", {"num_classes": 10})
        code, out, err = cli("status", "--storage", url, "--study", name)
        assert code == 0, err
        teacher = [line.strip() for line in out.splitlines() if "teacher" in line]
        if name == "wrong":  # what `teacher eval` read for the demo teacher fed [0, 1] pixels
            assert teacher == [
                "teacher: 308,074 params, val accuracy 0.1758, fed unit images",
                "the teacher is near chance (0.1000): is teacher.input the images it was "
                "trained on? (`autostudent teacher eval --input …` checks it)",
            ]
        else:
            assert teacher == ["teacher: 308,074 params, val accuracy 0.9322"]
