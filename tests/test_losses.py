from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autostudent.errors import UserError
from autostudent.losses import LOSSES, kd_loss, wsl_weights

BATCH, CLASSES = 6, 5


def _batch(seed: int = 0, width: int = 16, teacher_width: int = 16):
    torch.manual_seed(seed)
    return {
        "student_logits": torch.randn(BATCH, CLASSES),
        "labels": torch.randint(0, CLASSES, (BATCH,)),
        "teacher_logits": 2 * torch.randn(BATCH, CLASSES),
        "student_features": torch.randn(BATCH, width),
        "teacher_features": torch.randn(BATCH, teacher_width),
    }


def _loss(
    name: str,
    batch: dict[str, torch.Tensor],
    *,
    alpha: float = 1.0,
    temperature: float = 4.0,
    **options: float,
) -> torch.Tensor:
    loss = kd_loss(name)
    features = {
        k: batch[k] for k in ("student_features", "teacher_features") if loss.needs_features
    }
    return loss.fn(
        batch["student_logits"],
        batch["labels"],
        batch["teacher_logits"],
        temperature=temperature,
        alpha=alpha,
        **features,
        **options,
    )


def test_all_paper_losses_are_registered() -> None:
    assert LOSSES.names() == ["dist", "dkd", "kd", "lskd", "mse", "rkd", "wsl"]
    assert [n for n in LOSSES if kd_loss(n).needs_features] == ["rkd"]


@pytest.mark.parametrize("name", LOSSES.names())
def test_alpha_zero_is_plain_cross_entropy(name: str) -> None:
    batch = _batch()
    expected = F.cross_entropy(batch["student_logits"], batch["labels"])
    torch.testing.assert_close(_loss(name, batch, alpha=0.0), expected)


@pytest.mark.parametrize("name", LOSSES.names())
def test_gradient_reaches_student_and_never_teacher(name: str) -> None:
    batch = _batch()
    for key in batch:
        if batch[key].is_floating_point():
            batch[key].requires_grad_(True)
    _loss(name, batch, alpha=0.5).backward()
    assert batch["student_logits"].grad is not None
    assert batch["student_logits"].grad.abs().sum() > 0
    assert batch["teacher_logits"].grad is None
    assert batch["teacher_features"].grad is None
    if kd_loss(name).needs_features:
        assert batch["student_features"].grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES.names())
def test_half_inputs_give_the_fp32_result(name: str) -> None:
    batch = {k: v.half() if v.is_floating_point() else v for k, v in _batch().items()}
    in_fp32 = {k: v.float() if v.is_floating_point() else v for k, v in batch.items()}
    half_loss = _loss(name, batch)
    assert half_loss.dtype == torch.float32
    torch.testing.assert_close(half_loss, _loss(name, in_fp32))


def test_unknown_loss_names_the_known_ones() -> None:
    with pytest.raises(UserError, match="unknown KD loss 'hinton'") as info:
        kd_loss("hinton")
    for name in LOSSES.names():
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"temperature": 0.0}, "temperature"),
        ({"teacher_logits": torch.zeros(BATCH, CLASSES + 1)}, "differ in shape"),
    ],
)
def test_bad_arguments_are_refused(change: dict[str, object], match: str) -> None:
    args = {**_batch(), "alpha": 0.5, "temperature": 4.0, **change}
    args.pop("student_features")
    args.pop("teacher_features")
    with pytest.raises(ValueError, match=match):
        kd_loss("kd").fn(
            args.pop("student_logits"), args.pop("labels"), args.pop("teacher_logits"), **args
        )


def test_unknown_option_is_refused() -> None:
    with pytest.raises(TypeError, match="beta"):
        _loss("kd", _batch(), beta=2.0)


# kd


def test_kd_gradient_sums_to_zero_per_sample() -> None:
    # d KL / d s = (p_s - p_t) / T per row, and both distributions sum to 1.
    batch = _batch()
    batch["student_logits"].requires_grad_(True)
    _loss("kd", batch).backward()
    grad = batch["student_logits"].grad
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad.sum(1), torch.zeros(BATCH), atol=1e-7, rtol=0)


def test_kd_is_zero_when_student_matches_teacher() -> None:
    batch = _batch()
    batch["student_logits"] = batch["teacher_logits"].clone()
    torch.testing.assert_close(_loss("kd", batch), torch.tensor(0.0))


def test_kd_matches_hand_computation() -> None:
    # At T = 2 the teacher [2 ln 3, 0] gives (3/4, 1/4) and the student [0, 0] gives (1/2, 1/2).
    batch = {
        "student_logits": torch.tensor([[0.0, 0.0]]),
        "labels": torch.tensor([0]),
        "teacher_logits": torch.tensor([[2 * math.log(3.0), 0.0]]),
    }
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    torch.testing.assert_close(_loss("kd", batch, temperature=2.0), torch.tensor(4 * kl))


# mse


def test_mse_matches_hand_computation() -> None:
    batch = {
        "student_logits": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
        "labels": torch.tensor([0, 1]),
        "teacher_logits": torch.tensor([[0.0, 0.0], [1.0, 1.0]]),
    }
    ce = F.cross_entropy(batch["student_logits"], batch["labels"])
    # Differences 1, 2, 2, 3: mean square (1 + 4 + 4 + 9) / 4 = 4.5, at any temperature.
    for temperature in (1.0, 7.0):
        torch.testing.assert_close(
            _loss("mse", batch, alpha=1.0, temperature=temperature), torch.tensor(4.5)
        )
    torch.testing.assert_close(_loss("mse", batch, alpha=0.25), 0.75 * ce + 0.25 * 4.5)


# lskd


def test_lskd_ignores_the_range_and_offset_of_either_logits() -> None:
    # The point of standardising: a student whose logits are the teacher's, scaled and shifted
    # per row, has nothing left to learn, where Hinton's KD would still push the range.
    batch = _batch()
    scale = torch.rand(BATCH, 1) * 3 + 0.2
    shift = torch.randn(BATCH, 1) * 5
    batch["student_logits"] = batch["teacher_logits"] * scale + shift
    torch.testing.assert_close(_loss("lskd", batch), torch.tensor(0.0), atol=1e-5, rtol=0)
    assert _loss("kd", batch) > 0.01

    other = _batch(1)
    moved = dict(other, student_logits=other["student_logits"] * 4 - 2)
    moved["teacher_logits"] = other["teacher_logits"] * 0.5 + 1
    torch.testing.assert_close(_loss("lskd", moved), _loss("lskd", other))


def test_lskd_is_weighted_kd_on_z_scored_logits() -> None:
    batch = _batch()

    def z(x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)

    standardized = dict(
        batch,
        student_logits=z(batch["student_logits"]),
        teacher_logits=z(batch["teacher_logits"]),
    )
    kd_on_z = _loss("kd", standardized, temperature=2.0)
    torch.testing.assert_close(_loss("lskd", batch, temperature=2.0, weight=1.0), kd_on_z)
    torch.testing.assert_close(_loss("lskd", batch, temperature=2.0), 9 * kd_on_z)


# dist


def test_dist_is_one_minus_the_pearson_correlations_of_rows_and_columns() -> None:
    # torch.corrcoef, not the loss's own arithmetic: the paper's definition computed another way.
    batch = _batch()
    p_s = F.softmax(batch["student_logits"] / 4.0, dim=1)
    p_t = F.softmax(batch["teacher_logits"] / 4.0, dim=1)

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n = len(a)
        return (
            1
            - torch.stack(
                [torch.corrcoef(torch.stack([a[i], b[i]]))[0, 1] for i in range(n)]
            ).mean()
        )

    inter, intra = distance(p_s, p_t), distance(p_s.T, p_t.T)
    torch.testing.assert_close(_loss("dist", batch), 16 * (2 * inter + 2 * intra))
    torch.testing.assert_close(
        _loss("dist", batch, alpha=0.5, beta=1.0, gamma=3.0),
        0.5 * F.cross_entropy(batch["student_logits"], batch["labels"]) + 8 * (inter + 3 * intra),
    )


def test_dist_is_zero_at_the_teacher_and_blind_to_how_sure_the_student_is() -> None:
    batch = _batch()
    at_teacher = dict(batch, student_logits=batch["teacher_logits"].clone())
    torch.testing.assert_close(_loss("dist", at_teacher), torch.tensor(0.0), atol=1e-5, rtol=0)
    # Hinton's KD still pushes a student that ranks every class as the teacher does but is less
    # sure; DIST's inter-class term does not (a linear map of the probabilities, per row).
    p_t = F.softmax(batch["teacher_logits"], dim=1)
    flatter = torch.log(0.5 * p_t + 0.5 / CLASSES)
    less_sure = dict(batch, student_logits=flatter)
    inter_only = _loss("dist", less_sure, temperature=1.0, beta=1.0, gamma=0.0)
    torch.testing.assert_close(inter_only, torch.tensor(0.0), atol=1e-5, rtol=0)
    assert _loss("kd", less_sure, temperature=1.0) > 0.01


def test_dist_stays_finite_for_one_image_and_a_certain_teacher() -> None:
    batch = _batch()
    one = {k: v[:1] for k, v in batch.items()}  # a column of one value has no correlation: 0
    student = one["student_logits"].clone().requires_grad_()
    loss = _loss(
        "dist", dict(one, student_logits=student, teacher_logits=one["teacher_logits"] * 1e4)
    )
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()


# dkd


def test_dkd_with_teacher_confidence_as_beta_is_classic_kd() -> None:
    # Zhao et al. eq. 7: KD = TCKD + (1 - p_target^teacher) * NCKD, per sample.
    batch, temperature = _batch(), 3.0
    p_teacher = F.softmax(batch["teacher_logits"] / temperature, dim=1)
    for i in range(BATCH):
        one = {k: v[i : i + 1] for k, v in batch.items()}
        beta = 1.0 - p_teacher[i, batch["labels"][i]].item()
        torch.testing.assert_close(
            _loss("dkd", one, temperature=temperature, beta=beta),
            _loss("kd", one, temperature=temperature),
        )


def test_dkd_nckd_is_zero_when_non_target_logits_agree() -> None:
    batch = _batch()
    student = batch["teacher_logits"].clone()
    student[torch.arange(BATCH), batch["labels"]] += 1.5  # only the target class differs
    batch["student_logits"] = student
    tckd_only = _loss("dkd", batch, beta=0.0)
    assert tckd_only > 0
    torch.testing.assert_close(_loss("dkd", batch, beta=8.0), tckd_only)


def test_dkd_is_non_negative_and_zero_at_the_teacher() -> None:
    for seed in range(5):
        assert _loss("dkd", _batch(seed)) >= 0
    batch = _batch()
    batch["student_logits"] = batch["teacher_logits"].clone()
    torch.testing.assert_close(_loss("dkd", batch), torch.tensor(0.0))


def test_dkd_stays_finite_for_a_confident_teacher() -> None:
    # p_target = 1 - e^-200 rounds to 1 in fp32: a log(1 - p_target) would be -inf.
    batch = _batch()
    teacher = torch.zeros(BATCH, CLASSES)
    teacher[torch.arange(BATCH), batch["labels"]] = 200.0
    batch["teacher_logits"] = teacher
    batch["student_logits"] = (teacher * 0.9).requires_grad_(True)
    loss = _loss("dkd", batch, temperature=1.0)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(batch["student_logits"].grad).all()


# rkd


def _orthogonal(width: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(width, width, dtype=torch.float64))
    return q.float()


def test_rkd_ignores_rotation_scale_and_shift_of_the_teacher() -> None:
    batch = _batch(width=8, teacher_width=64)
    reference = _loss("rkd", batch)
    assert reference > 0
    moved = dict(batch)
    moved["teacher_features"] = 3.7 * batch["teacher_features"] @ _orthogonal(64) + 5.0
    torch.testing.assert_close(_loss("rkd", moved), reference, rtol=1e-4, atol=1e-5)


def test_rkd_survives_a_large_common_offset() -> None:
    # Penultimate features after ReLU share a large positive mean; the Gram-matrix distances
    # must not lose the small differences between samples to fp32 cancellation.
    batch = _batch(width=8, teacher_width=64)
    reference = _loss("rkd", batch)
    batch["teacher_features"] = batch["teacher_features"] + 1000.0
    torch.testing.assert_close(_loss("rkd", batch), reference, rtol=1e-4, atol=1e-5)


def test_rkd_compares_relations_across_widths() -> None:
    # A width-8 student embedded isometrically in 64 teacher dimensions has the same relations.
    batch = _batch(width=8, teacher_width=64)
    padded = F.pad(batch["student_features"], (0, 56))
    batch["teacher_features"] = 0.5 * padded @ _orthogonal(64)
    torch.testing.assert_close(_loss("rkd", batch), torch.tensor(0.0), atol=1e-5, rtol=0)


def test_rkd_is_zero_when_features_match() -> None:
    batch = _batch()
    batch["teacher_features"] = batch["student_features"].clone()
    torch.testing.assert_close(_loss("rkd", batch), torch.tensor(0.0))


def test_rkd_matches_the_papers_difference_formulation() -> None:
    # Park et al.'s code forms e_j - e_i explicitly; the Gram-matrix form must agree with it.
    def reference(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        def relations(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            diff = e.unsqueeze(0) - e.unsqueeze(1)
            distances = diff.norm(dim=2)
            distances = distances / distances[distances > 0].mean()
            unit = F.normalize(diff, p=2, dim=2)
            return distances, torch.bmm(unit, unit.transpose(1, 2))

        sd, sa = relations(student)
        td, ta = relations(teacher)
        return 25 * F.smooth_l1_loss(sd, td) + 50 * F.smooth_l1_loss(sa, ta)

    batch = _batch(width=8, teacher_width=64)
    expected = reference(batch["student_features"], batch["teacher_features"])
    torch.testing.assert_close(_loss("rkd", batch), expected, rtol=1e-4, atol=1e-6)


def test_rkd_without_features_is_refused() -> None:
    batch = _batch()
    with pytest.raises(ValueError, match="needs student_features and teacher_features"):
        kd_loss("rkd").fn(
            batch["student_logits"],
            batch["labels"],
            batch["teacher_logits"],
            temperature=4.0,
            alpha=0.5,
            student_features=batch["student_features"],
        )


# wsl


def test_wsl_weights_are_in_the_unit_interval() -> None:
    for seed in range(5):
        batch = _batch(seed)
        weights = wsl_weights(batch["student_logits"], batch["labels"], batch["teacher_logits"])
        assert weights.shape == (BATCH,)
        assert ((weights > 0) & (weights <= 1)).all()
    # Equal cross-entropies give 1 - 1/e; a student better than the teacher weighs less, a worse
    # one more, and saturated logits (CE of exactly 0) give 0 and 1, never NaN.
    labels = torch.tensor([0, 0, 0, 0, 0])
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    student = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 100.0], [100.0, 0.0]])
    weights = wsl_weights(student, labels, teacher)
    torch.testing.assert_close(weights[0], torch.tensor(1 - math.exp(-1)))
    assert 0 < weights[1] < weights[0] < weights[2] < 1
    torch.testing.assert_close(weights[3:], torch.tensor([1.0, 0.0]))


def test_wsl_is_kd_weighted_per_sample() -> None:
    batch, temperature = _batch(), 2.0
    student_ce = F.cross_entropy(batch["student_logits"], batch["labels"], reduction="none")
    teacher_ce = F.cross_entropy(batch["teacher_logits"], batch["labels"], reduction="none")
    weights = 1 - torch.exp(-student_ce / teacher_ce)
    per_sample_kd = torch.stack(
        [
            _loss("kd", {k: v[i : i + 1] for k, v in batch.items()}, temperature=temperature)
            for i in range(BATCH)
        ]
    )
    torch.testing.assert_close(
        _loss("wsl", batch, temperature=temperature), (weights * per_sample_kd).mean()
    )
    # The weights differ across samples, so this is not just a rescaled kd.
    assert weights.std() > 0.05


def test_wsl_weight_carries_no_gradient() -> None:
    # Only the KL trains the student; the weight is a detached per-sample factor.
    batch = _batch()
    batch["student_logits"].requires_grad_(True)
    weights = wsl_weights(batch["student_logits"], batch["labels"], batch["teacher_logits"])
    assert not weights.requires_grad
    _loss("wsl", batch).backward()
    wsl_grad = batch["student_logits"].grad.clone()

    batch["student_logits"].grad = None
    kl = (
        F.kl_div(
            F.log_softmax(batch["student_logits"] / 4, 1),
            F.log_softmax(batch["teacher_logits"] / 4, 1),
            reduction="none",
            log_target=True,
        ).sum(1)
        * 16
    )
    (weights * kl).mean().backward()
    torch.testing.assert_close(wsl_grad, batch["student_logits"].grad)
