"""retrain's mixup mode (function matching): the mixed batch, its labels, the teacher on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import autostudent.retrain as retrain_module
from autostudent.retrain import Mixing, mixed, mixed_labels, retrain
from autostudent.teacher import TeacherSource, load_teacher
from autostudent.teacher_outputs import teacher_outputs
from autostudent.trial import Budget, KDSettings, kd_objective
from tests.test_trial import chain_spec


def _cross_entropy(logits, labels, *_):
    return F.cross_entropy(logits, labels)


def test_mixup_mixes_each_image_with_a_partner_of_its_batch():
    x = torch.randn(16, 1, 8, 8)
    mixing = Mixing()
    out = mixed(lambda xb: xb, torch.Generator().manual_seed(0), mixing)(x)
    assert sorted(mixing.partner.tolist()) == list(range(16))
    assert not torch.equal(mixing.partner, torch.arange(16))
    assert 0.0 <= mixing.weight <= 1.0
    torch.testing.assert_close(out, mixing.weight * x + (1 - mixing.weight) * x[mixing.partner])

    again = Mixing()
    same = mixed(lambda xb: xb, torch.Generator().manual_seed(0), again)(x)
    torch.testing.assert_close(same, out)
    assert (again.weight, again.partner.tolist()) == (mixing.weight, mixing.partner.tolist())

    transform = mixed(lambda xb: xb, torch.Generator().manual_seed(1), mixing)
    weights = []
    for _ in range(50):
        transform(x)
        weights.append(mixing.weight)
    assert min(weights) < 0.2 and max(weights) > 0.8  # one uniform weight per batch


def test_mixed_labels_is_cross_entropy_on_the_mixed_label_distribution():
    torch.manual_seed(0)
    logits, teacher = torch.randn(16, 10), torch.randn(16, 10)
    labels = torch.randint(0, 10, (16,))
    mixing = Mixing(0.3, torch.randperm(16))
    mixed_ce = mixed_labels(_cross_entropy, mixing)(logits, labels, None, None, None)
    soft = 0.3 * F.one_hot(labels, 10).float() + 0.7 * F.one_hot(labels[mixing.partner], 10).float()
    torch.testing.assert_close(mixed_ce, F.cross_entropy(logits, soft))

    # the KD term reads no label: with alpha 1 mixing the labels changes nothing
    kd = kd_objective(KDSettings("kd", temperature=2.0, alpha=1.0))
    torch.testing.assert_close(
        mixed_labels(kd, mixing)(logits, labels, teacher, None, None),
        kd(logits, labels, teacher, None, None),
    )
    # and with alpha 0.5 it is the CE half that is mixed
    half = kd_objective(KDSettings("kd", temperature=2.0, alpha=0.5))
    term = kd(logits, labels, teacher, None, None)
    torch.testing.assert_close(
        mixed_labels(half, mixing)(logits, labels, teacher, None, None),
        0.5 * F.cross_entropy(logits, soft) + 0.5 * term,
    )


@pytest.fixture
def recorded(monkeypatch):
    """What each retrain's first batch was: the crop-and-flip batch before mixing, the mixing,
    the images the student was fed and the teacher's targets on them."""
    batches: list[dict] = []

    def record_mixing(transform, gen, mixing):
        def first_of_each(xb):
            before = transform(xb)
            out = mixed(lambda _: before, gen, mixing)(xb)
            batches.append({"before": before, "weight": mixing.weight,
                            "partner": mixing.partner.clone(), "mixed": out})  # fmt: skip
            return out

        return first_of_each

    def record_feed(make):
        def wrapped(*args):
            feed = make(*args)

            def fed(idx, xb):
                out = feed(idx, xb)
                batches[-1].update(student=out[0], targets=out[1])
                return out

            return fed

        return wrapped

    monkeypatch.setattr(retrain_module, "mixed", record_mixing)
    online = record_feed(retrain_module.online_teacher)
    monkeypatch.setattr(retrain_module, "online_teacher", online)
    monkeypatch.setattr(retrain_module, "no_teacher", record_feed(retrain_module.no_teacher))
    return batches


def test_mixup_retrain_teaches_on_the_mixed_images(tmp_path, teacher_file, digits, recorded):
    teacher = load_teacher(TeacherSource(teacher_file))
    outputs = teacher_outputs(teacher, digits, tmp_path)
    budget = Budget(epochs=1, batch_size=64, lr=0.05)
    runs = {}
    for name, kd in (("kd", KDSettings("kd", 1.0, 1.0)), ("no_kd", None)):
        recorded.clear()
        retrain(chain_spec(digits), digits, kd=kd, outputs=outputs, teacher=teacher,
                budget=budget, seed=3, augment_with="mixup")  # fmt: skip
        runs[name] = list(recorded)
    steps = retrain_module.steps_per_epoch(len(digits.x_train), budget.batch_size)
    first = runs["kd"][0]
    assert len(runs["kd"]) == steps
    assert 0.0 < first["weight"] < 1.0
    expected = (
        first["weight"] * first["before"]
        + (1 - first["weight"]) * first["before"][first["partner"]]
    )
    torch.testing.assert_close(first["student"], expected)  # the student sees the mix
    with torch.no_grad():  # and the teacher's targets are its outputs on that very mix
        on_mix = teacher.forward_with_features(first["student"])[0].float()
    torch.testing.assert_close(first["targets"], on_mix)
    # the no-KD baseline of the same seed sees the same mixed batches, without targets
    for kd_batch, plain in zip(runs["kd"], runs["no_kd"], strict=True):
        assert plain["targets"] is None
        torch.testing.assert_close(plain["student"], kd_batch["student"])


@pytest.mark.parametrize(
    ("augment", "dtype"), [("mixup", None), ("views", None), ("none", torch.float16)]
)
def test_a_retrain_stopped_after_an_epoch_resumes_to_the_weights_of_one_never_stopped(
    tmp_path, teacher_file, digits, monkeypatch, capsys, augment, dtype
):
    """The epoch checkpoint holds everything the next epoch draws on: weights, the one-cycle
    optimizer's step and momenta, the crops, flips, mixes and view picks of the seed's stream,
    and the float16 GradScaler's scale (a GPU without bfloat16; forced on the CPU here)."""
    from collections import Counter

    from autostudent import killpoints
    from autostudent.device import Precision

    if dtype is not None:  # a scale that grows every step, so the scaler's state moves

        def fp16(dev):
            return Precision("cpu", dtype, torch.amp.GradScaler("cpu", growth_interval=1))

        monkeypatch.setattr(retrain_module, "precision", fp16)

    teacher = load_teacher(TeacherSource(teacher_file))
    outputs = teacher_outputs(teacher, digits, tmp_path, views=2)
    args = dict(
        kd=KDSettings("kd", 4.0, 0.9),
        outputs=outputs,
        teacher=teacher,
        budget=Budget(epochs=3, batch_size=64, lr=0.05),
        seed=5,
        augment_with=augment,
    )
    whole = retrain(chain_spec(digits), digits, **args)
    checkpoint = tmp_path / "run.epoch.pt"
    monkeypatch.setattr(killpoints, "_reached", Counter())
    monkeypatch.setenv(killpoints.RAISE, "retrain_epoch:2")
    with pytest.raises(killpoints.InjectedFault):
        retrain(chain_spec(digits), digits, checkpoint=checkpoint, **args)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    monkeypatch.delenv(killpoints.RAISE)
    torch.manual_seed(123)  # the global stream is restored from the file too
    resumed = retrain(chain_spec(digits), digits, checkpoint=checkpoint, **args)
    assert "resumed after epoch 2" in capsys.readouterr().err
    assert len(resumed.epoch_seconds) == 3
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_an_unreadable_epoch_checkpoint_trains_from_the_start_and_says_so(
    tmp_path, teacher_file, digits, capsys
):
    teacher = load_teacher(TeacherSource(teacher_file))
    outputs = teacher_outputs(teacher, digits, tmp_path)
    args = dict(kd=None, outputs=outputs, teacher=teacher,
                budget=Budget(epochs=1, batch_size=64, lr=0.05), seed=5)  # fmt: skip
    whole = retrain(chain_spec(digits), digits, **args)
    checkpoint = tmp_path / "cut.epoch.pt"
    checkpoint.write_bytes(b"cut short by a kill")
    again = retrain(chain_spec(digits), digits, checkpoint=checkpoint, **args)
    assert "could not be read: training from epoch 1" in capsys.readouterr().err
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name]), name


def test_a_pool_exports_last_retrain_runs_here_on_a_workers_threads(monkeypatch):
    """Resumed with one retrain left, a ``--workers 2`` export trains it in this process: on one
    thread, as its worker would have and as metrics.json says, not on all of torch's."""
    from types import SimpleNamespace

    from torch import nn

    import autostudent.retrains as retrains
    from autostudent.retrain import Retrained

    threads = []

    class OneJob:
        p = SimpleNamespace(config=SimpleNamespace(resources=SimpleNamespace(device="cpu")))

        def key(self, job):
            return "only"

        def outputs(self, full, features):
            return None

        def retrain(self, job, checkpoint=None):
            threads.append(torch.get_num_threads())
            return Retrained(nn.Linear(1, 1), 1.0, [1.0], 1.0)

    monkeypatch.setattr(retrains.Retrainer, "_model", lambda self, job, record: record)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        job = retrains.Job({}, True, None, 0, "last")
        retrains.Retrainer(OneJob(), workers=2).run([job])
        retrains.Retrainer(OneJob(), workers=2, threads=2).run([job])
        retrains.Retrainer(OneJob(), workers=1).run([job])  # no pool: this process's threads
        assert threads == [1, 2, 2]
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
