"""One KD trial from cached teacher outputs, and the measuring and training pieces it uses."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autostudent.trial as trial_module
from autostudent.datasets import Data
from autostudent.errors import TrialFailed
from autostudent.measure import count_flops, count_params, latency_ms
from autostudent.spaces import load_space
from autostudent.student import build_student
from autostudent.teacher import TeacherSource, load_teacher
from autostudent.teacher_outputs import TeacherOutputs, teacher_outputs
from autostudent.training import (
    WeightAverage,
    accuracy,
    augment,
    batch_indices,
    rung_decay,
    sgd,
    steps_per_epoch,
)
from autostudent.trial import Budget, Caps, KDSettings, TrialResult, run_trial

pytestmark = pytest.mark.usefixtures("single_thread")

FAST = Budget(epochs=2, batch_size=16, lr=0.1)


def chain_spec(data: Data, width: int = 8, depth: int = 1) -> dict:
    point = {"depth_0": depth, "depth_1": depth, "depth_2": depth, "width": width}
    c, size, _ = data.input_shape
    return load_space("chain").build_spec(
        point, 0, in_channels=c, num_classes=data.num_classes, input_size=size
    )


def oracle_outputs(data: Data) -> TeacherOutputs:
    """A teacher that knows every label: keeps the trial tests independent of teacher quality."""
    y = torch.from_numpy(data.y_train)
    logits = 4.0 * F.one_hot(y, data.num_classes).float()
    return TeacherOutputs(logits, None, 1.0, None, 0, Path("oracle"))


@pytest.fixture
def no_training(monkeypatch) -> None:
    def fail(*_args, **_kwargs):
        raise AssertionError("trained although the trial should fail first")

    monkeypatch.setattr(trial_module, "distill_epoch", fail)


# --- run_trial --------------------------------------------------------------------------------


def test_kd_trial_on_fashion_mnist_learns_and_reports_every_epoch(fashion_subset):
    spec = chain_spec(fashion_subset, width=16)
    reports: list[tuple[int, list[float]]] = []

    def report(result: TrialResult) -> None:
        reports.append((result.epochs, list(result.curve)))

    result = run_trial(
        spec,
        KDSettings("kd", temperature=4.0, alpha=0.5),
        fashion_subset,
        oracle_outputs(fashion_subset),
        budget=FAST,
        seed=0,
        report=report,
    )
    assert len(result.curve) == result.epochs == FAST.epochs
    assert reports == [(1, result.curve[:1]), (2, result.curve)]
    assert result.val_accuracy == result.curve[-1] > 0.5  # chance is 0.1
    torch.manual_seed(0)
    assert result.params == count_params(build_student(spec))
    assert result.flops > 0 and result.latency_ms > 0
    assert result.train_seconds > 0
    assert result.img_per_s == pytest.approx(1000 * FAST.epochs / result.train_seconds)


def test_same_seed_same_result(digits):
    spec, outputs = chain_spec(digits), oracle_outputs(digits)
    runs = [
        run_trial(spec, KDSettings("dkd"), digits, outputs, budget=FAST, seed=3) for _ in range(2)
    ]
    assert runs[0].curve == runs[1].curve
    assert runs[0].val_accuracy == runs[1].val_accuracy > 0.5


def test_a_rung_reads_the_weight_average_and_the_last_epoch_the_model(digits):
    """The average only changes what the rungs read: training and the final reading are the
    model's own, bit for bit."""
    spec, outputs = chain_spec(digits), oracle_outputs(digits)
    three = Budget(epochs=3, batch_size=16, lr=0.1)
    plain = run_trial(spec, KDSettings("kd"), digits, outputs, budget=three, seed=3)
    averaged = run_trial(
        spec,
        KDSettings("kd"),
        digits,
        outputs,
        budget=Budget(epochs=3, batch_size=16, lr=0.1, rung_average=0.9),
        seed=3,
    )
    assert averaged.val_accuracy == plain.val_accuracy == plain.curve[-1]
    assert averaged.curve[-1] == plain.curve[-1]
    assert averaged.curve[:2] != plain.curve[:2]  # the rungs read another network


def test_auto_rung_average_spans_one_sixteenth_of_an_epoch(digits):
    """``rung_average: auto`` is the decay 1 - 16/steps at the trial's own steps an epoch."""
    spec, outputs = chain_spec(digits), oracle_outputs(digits)
    steps = steps_per_epoch(len(digits.x_train), 16)
    assert steps > 16  # else auto reads the model itself
    runs = [
        run_trial(
            spec,
            KDSettings("kd"),
            digits,
            outputs,
            budget=Budget(epochs=3, batch_size=16, lr=0.1, rung_average=setting),
            seed=3,
        )
        for setting in ("auto", 1 - 16 / steps, None)
    ]
    assert runs[0].curve == runs[1].curve
    assert runs[0].curve[:2] != runs[2].curve[:2]


@pytest.mark.parametrize(
    ("setting", "steps", "decay"),
    [("auto", 79, 1 - 16 / 79), ("auto", 157, 1 - 16 / 157), ("auto", 16, None),
     ("auto", 3, None), (0.9, 3, 0.9), (None, 157, None)],
)  # fmt: skip
def test_rung_decay(setting, steps, decay):
    assert rung_decay(setting, steps) == pytest.approx(decay)


def test_weight_average_of_weights_and_batchnorm_statistics():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, 0.75)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(4.0)
    model.train()(torch.randn(8, 3))  # BatchNorm's running statistics and counter move too
    average.update()
    after = model.state_dict()
    for name, value in average.model.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.75 * before[name] + 0.25 * after[name]), name
        else:
            assert torch.equal(value, after[name]), name  # num_batches_tracked: copied
    assert average.model is not model


@pytest.mark.parametrize("cap", ["params", "flops", "latency_ms"])
def test_student_over_a_cap_fails_before_training(digits, no_training, cap):
    spec = chain_spec(digits)
    model = build_student(spec)
    caps = {
        "params": Caps(max_params=count_params(model) - 1),
        "flops": Caps(max_flops=count_flops(model, digits.input_shape) - 1),
        "latency_ms": Caps(max_latency_ms=1e-6),  # no network runs in a nanosecond
    }[cap]
    with pytest.raises(TrialFailed, match=cap):
        run_trial(
            spec, KDSettings(), digits, oracle_outputs(digits), budget=FAST, seed=0, caps=caps
        )


def test_student_at_the_cap_passes(digits):
    spec = chain_spec(digits)
    params = count_params(build_student(spec))
    result = run_trial(
        spec,
        KDSettings(),
        digits,
        oracle_outputs(digits),
        budget=Budget(epochs=1, batch_size=64),
        seed=0,
        caps=Caps(max_params=params),
    )
    assert result.params == params


def test_diverging_loss_fails_the_trial(digits):
    with pytest.raises(TrialFailed, match=r"loss is (nan|inf)"):
        run_trial(
            chain_spec(digits),
            KDSettings(),
            digits,
            oracle_outputs(digits),
            budget=Budget(epochs=2, batch_size=16, lr=1e6),
            seed=0,
        )


def test_relational_kd_uses_the_teacher_features(tmp_path, teacher_file, digits, monkeypatch):
    outputs = teacher_outputs(load_teacher(TeacherSource(teacher_file)), digits, tmp_path)
    assert outputs.features is not None
    seen: list[torch.Tensor] = []
    loss = trial_module.kd_loss("rkd")
    monkeypatch.setattr(trial_module, "kd_loss", lambda name: spy_on_features(loss, seen))

    result = run_trial(
        chain_spec(digits), KDSettings("rkd", alpha=0.5), digits, outputs, budget=FAST, seed=0
    )
    assert len(result.curve) == 2 and result.val_accuracy > 0.3
    assert seen and all(f.shape[1] == outputs.features.shape[1] for f in seen)
    # the rows handed to the loss are cached teacher features, not the student's
    assert all((outputs.features == row).all(1).any() for row in seen[0])


def spy_on_features(loss, seen: list[torch.Tensor]):
    def fn(*args, teacher_features=None, **kwargs):
        seen.append(teacher_features)
        return loss.fn(*args, teacher_features=teacher_features, **kwargs)

    return type(loss)(loss.name, fn, loss.needs_features)


def test_views_feed_the_student_a_view_and_the_teacher_s_outputs_on_it(
    tmp_path, teacher_file, digits, monkeypatch
):
    outputs = teacher_outputs(load_teacher(TeacherSource(teacher_file)), digits, tmp_path, views=3)
    views = outputs.views
    x = torch.from_numpy(digits.x_train)
    feed = trial_module.view_teacher(views, x, torch.device("cpu"), False, torch.Generator())
    idx = torch.arange(100, 164)
    xb, logits, feats = feed(idx, x[idx])
    assert feats is None and xb.shape == x[idx].shape
    chosen = []
    for j, i in enumerate(idx.tolist()):
        v = int((views.logits[i] == logits[j]).all(1).nonzero()[0])  # which view's targets
        chosen.append(v)
        torch.testing.assert_close(xb[j], views.images(x, idx[j : j + 1], torch.tensor([v]))[0])
    assert len(set(chosen)) == 3  # a random view per image, not always the same

    fed: list[torch.Tensor] = []
    view_teacher = trial_module.view_teacher

    def recorded(*args):
        inner = view_teacher(*args)

        def feed(idx, xb):
            out = inner(idx, xb)
            fed.append(out[1])
            return out

        return feed

    monkeypatch.setattr(trial_module, "view_teacher", recorded)
    result = run_trial(
        chain_spec(digits), KDSettings("kd", alpha=0.5), digits, outputs, budget=FAST, seed=0
    )
    assert result.val_accuracy > 0.3 and len(fed) > 2 * (len(x) // FAST.batch_size) - 2
    flat = views.logits.flatten(0, 1)
    assert all((flat == row).all(1).any() for row in fed[0])  # the views' targets
    assert not all((outputs.logits == row).all(1).any() for row in fed[0])  # not the clean ones


def test_relational_kd_without_teacher_features_fails(digits, no_training):
    with pytest.raises(TrialFailed, match="features"):
        run_trial(
            chain_spec(digits),
            KDSettings("rkd"),
            digits,
            oracle_outputs(digits),
            budget=FAST,
            seed=0,
        )


# --- measure ------------------------------------------------------------------------------------


def test_count_params_counts_the_whole_module():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2)
    )
    assert count_params(net) == 36 + 8 + 10  # conv, BN affine, linear with bias


def test_count_flops_of_a_linear_layer_and_modes_restored():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).train()
    assert count_flops(net, (3, 2, 2)) == 2 * 12 * 5
    assert net.training
    net.eval()
    assert latency_ms(net, (3, 2, 2), repeats=3, warmup=1) > 0
    assert not net.training


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "batch"), [(100, 32), (97, 32), (65, 32), (64, 64)])
def test_batch_indices_cover_the_data_once(n, batch):
    batches = list(batch_indices(n, batch, torch.Generator().manual_seed(0)))
    assert len(batches) == steps_per_epoch(n, batch)
    seen = torch.cat(batches).sort().values
    dropped = n - len(seen)
    assert dropped == (1 if n % batch == 1 else 0)  # only a lone last example is dropped
    assert len(seen.unique()) == len(seen) and all(len(b) > 1 for b in batches)


def test_one_cycle_schedule_of_a_patient_run():
    """A long export (200 epochs of 938 steps: Fashion-MNIST at batch 64) warms up over its
    first quarter, peaks once, anneals to lr/25e4 at its very last step and stays there (a
    step past the planned ones, as the optimizer clamps it, does not climb back)."""
    total = 200 * 938
    opt = sgd(nn.Linear(2, 2), lr=0.05, weight_decay=5e-4, total_steps=total)
    steps = [0, total // 8, total // 4 - 1, total // 2, total - 1, total, total + 500]
    lrs = [opt.schedule(min(s, total - 1))[0] for s in steps]
    assert lrs[0] == pytest.approx(0.05 / 25)
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(0.05)
    assert lrs[2] > lrs[3] > lrs[4] == pytest.approx(0.05 / 25 / 1e4)
    assert lrs[5] == lrs[6] == lrs[4]
    opt.steps = total + 3  # steps past the plan use the last planned step's lr
    asked: list[int] = []
    schedule = opt.schedule
    opt.schedule = lambda step: asked.append(step) or schedule(step)
    opt.step()
    assert asked == [total - 1]
    whole = [opt.schedule(s)[0] for s in range(0, total, 97)]
    peak = whole.index(max(whole))
    assert all(a <= b for a, b in pairwise(whole[: peak + 1]))
    assert all(a >= b for a, b in pairwise(whole[peak:]))


@pytest.mark.parametrize("total_steps", [1, 4, 13, 40])
def test_one_cycle_sgd_steps_exactly_as_torch_sgd_with_one_cycle_lr(total_steps):
    """The hand-written optimizer (no torch._dynamo import in the workers) gives torch's numbers:
    Nesterov SGD, weight decay on weights only, OneCycleLR(pct_start=0.25, cos) with momentum
    cycling; BatchNorm and a parameter without a gradient included."""

    def net() -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 3))
        # never gets a gradient: skipped, as torch skips it
        model.register_parameter("unused", nn.Parameter(torch.ones(2, 2)))
        return model

    ours, theirs = net(), net()
    opt = sgd(ours, 0.1, 5e-4, total_steps)
    decay = [p for p in theirs.parameters() if p.ndim > 1]
    rest = [p for p in theirs.parameters() if p.ndim <= 1]
    reference = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
        lr=0.1,
        momentum=0.9,
        nesterov=True,
    )
    schedule = (
        torch.optim.lr_scheduler.OneCycleLR(
            reference, max_lr=0.1, total_steps=total_steps, pct_start=0.25, anneal_strategy="cos"
        )
        if total_steps != 4
        else None
    )  # torch divides by zero there (a phase of zero steps)
    gen = torch.Generator().manual_seed(1)
    for step in range(total_steps):
        x = torch.randn(8, 1, 6, 6, generator=gen)
        y = torch.randint(0, 3, (8,), generator=gen)
        for model, optimizer in ((ours, opt), (theirs, reference)):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            if optimizer is reference and schedule is None:
                lr, momentum = opt.schedule(step)  # the same schedule, set by hand
                for group in reference.param_groups:
                    group["lr"], group["momentum"] = lr, momentum
            optimizer.step()
        if schedule is not None:
            assert opt.schedule(step)[0] == pytest.approx(schedule.get_last_lr()[0], rel=1e-12)
            schedule.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_augment_keeps_shape_and_only_moves_pixels():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    gen = torch.Generator().manual_seed(0)
    torch.testing.assert_close(augment(x, gen, pad=0, flip=False), x)
    out = augment(x, gen)
    assert out.shape == x.shape
    for image, moved in zip(x, out, strict=True):  # every kept pixel comes from its own image
        kept = moved[moved != 0]
        assert torch.isin(kept, image).all()


def test_accuracy_counts_argmax_hits_over_several_batches():
    x = torch.eye(4).repeat(3, 1)  # 12 examples, one-hot inputs
    y = torch.tensor([0, 1, 2, 3] * 2 + [1, 1, 1, 1])
    assert accuracy(lambda xb: xb, x, y, batch_size=5) == pytest.approx(9 / 12)


def test_rungs_validate_on_part_of_the_split_and_the_last_epoch_on_all(digits, monkeypatch):
    seen: list[int] = []

    def counting(model, x, y, device="cpu"):
        seen.append(len(x))
        return accuracy(model, x, y, device)

    monkeypatch.setattr(trial_module, "accuracy", counting)
    budget = Budget(epochs=3, batch_size=64, lr=0.1, rung_val_images=100)
    result = run_trial(
        chain_spec(digits), KDSettings(), digits, oracle_outputs(digits), budget=budget, seed=0
    )
    assert seen == [100, 100, len(digits.x_val)]
    assert result.eval_seconds > 0 and result.setup_seconds > 0


def study_file(tmp_path: Path, teacher_file: Path, **fields) -> Path:
    """A study file for ``autostudent trial``: one epoch on digits, the chain space; ``fields``
    added or in place of these."""
    import yaml

    config = {
        "study": "one-trial",
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher_file)},
        "space": {"name": "chain"},
        "budget": {"epochs": 1, "batch_size": 32},
        **fields,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_trial_command_trains_on_the_study_s_teacher_views(cli, tmp_path, teacher_file):
    """``budget.teacher_views: K`` in a study file: the trial caches K views once (features too
    when the loss needs them) and trains on them; K must be 0-64."""
    import json

    rkd = {"kd": {"losses": ["rkd"]}}
    budget = {"epochs": 1, "batch_size": 32, "teacher_views": 2}
    path = study_file(tmp_path, teacher_file, **rkd, budget=budget)
    code, stdout, stderr = cli("trial", str(path), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["val_accuracy"] > 0.1  # better than chance after one epoch
    (entry,) = (tmp_path / "cache" / "teacher_outputs").glob("views*.pt")
    assert "-k2-" in entry.name and entry.name.endswith("-f.pt")  # rkd: features cached
    assert torch.load(entry, weights_only=True)["logits"].shape[1] == 2

    path = study_file(tmp_path, teacher_file, **rkd, budget={"teacher_views": -1})
    code, _, stderr = cli("trial", str(path))
    assert code == 2 and "budget.teacher_views" in stderr


def test_trial_command_resolves_a_cap_given_as_a_fraction_of_the_teacher(
    cli, tmp_path, teacher_file
):
    """``caps: {max_params: teacher/N}`` in a study file: ``autostudent trial`` counts the cap
    from the teacher (19,810 params: teacher/1000 is 19) and the student fails over it."""
    path = study_file(tmp_path, teacher_file, caps={"max_params": "teacher/1000"})
    code, _, stderr = cli("trial", str(path))
    # one line, its reason (not a traceback): the trial is not a bug
    assert code == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("error: the trial failed: params ") and "over the cap 19\n" in stderr
