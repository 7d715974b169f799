"""Knowledge-distillation losses, found by name, computed against cached teacher outputs.

Every registered loss has one signature::

    fn(student_logits, labels, teacher_logits, *, temperature, alpha,
       student_features=None, teacher_features=None, **options) -> scalar Tensor

and returns ``(1 - alpha) * CE(student_logits, labels) + alpha * distillation_term``, so
``alpha=0`` is plain cross-entropy whatever the loss. ``options`` are the loss's own keywords
(``beta`` for ``dkd``, ``weight`` for ``lskd``, ``distance_weight`` / ``angle_weight`` for
``rkd``, ``beta`` / ``gamma`` for ``dist``).

Adding a loss is one function computing only its distillation term, decorated with
``register_loss``; the decorator supplies the CE mixing, the fp32 cast and the teacher detach.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from autostudent.registry import Registry

Tensor = torch.Tensor
DistillTerm = Callable[..., Tensor]

# Fills the target class before a softmax so it gets probability exactly 0. The fp32 minimum
# rather than -inf: log_softmax of -inf is -inf, and KL then computes 0 * (-inf - -inf) = NaN.
_MASKED_LOGIT = torch.finfo(torch.float32).min
# Guards divisions by distances or cross-entropies that can be 0 (duplicate samples, a
# teacher that is certain of the label).
_EPS = 1e-7


@dataclass(frozen=True)
class KDLoss:
    """One registered loss: ``fn`` is the CE-mixed loss, see the module docstring."""

    name: str
    fn: Callable[..., Tensor]
    needs_features: bool  # True when the loss uses penultimate features


LOSSES: Registry[KDLoss] = Registry("KD loss")


def kd_loss(name: str) -> KDLoss:
    """The registered loss called ``name``; an unknown name raises UserError listing known ones."""
    return LOSSES.get(name)


def register_loss(name: str, *, needs_features: bool) -> Callable[[DistillTerm], DistillTerm]:
    """Register a function computing a distillation term as the KD loss ``name``.

    The decorated function receives fp32 student outputs, fp32 detached teacher outputs, the
    labels, ``temperature``, the features when ``needs_features`` and the caller's extra
    keywords; it returns the batch-mean distillation term. It is returned unchanged.
    """

    def add(distill: DistillTerm) -> DistillTerm:
        LOSSES.register(name)(
            KDLoss(name, _mixed_with_ce(name, distill, needs_features), needs_features)
        )
        return distill

    return add


def _mixed_with_ce(name: str, distill: DistillTerm, needs_features: bool) -> Callable[..., Tensor]:
    def fn(
        student_logits: Tensor,
        labels: Tensor,
        teacher_logits: Tensor,
        *,
        temperature: float,
        alpha: float,
        student_features: Tensor | None = None,
        teacher_features: Tensor | None = None,
        **options: float,
    ) -> Tensor:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"KD loss {name!r}: alpha must be in [0, 1], got {alpha}")
        if temperature <= 0.0:
            raise ValueError(f"KD loss {name!r}: temperature must be > 0, got {temperature}")
        if student_logits.shape != teacher_logits.shape:
            raise ValueError(
                f"KD loss {name!r}: student logits {tuple(student_logits.shape)} and cached "
                f"teacher logits {tuple(teacher_logits.shape)} differ in shape"
            )
        features: dict[str, Tensor] = {}
        if needs_features:
            if student_features is None or teacher_features is None:
                raise ValueError(
                    f"KD loss {name!r} needs student_features and teacher_features "
                    "(penultimate features); the teacher-output cache must store them"
                )
            if len(student_features) != len(teacher_features):
                raise ValueError(
                    f"KD loss {name!r}: {len(student_features)} student feature rows but "
                    f"{len(teacher_features)} teacher feature rows"
                )
            features = {
                "student_features": student_features.float(),
                # Detached although cached teacher tensors carry no graph: the teacher is
                # fixed, and a caller passing a live tensor must not train it by accident.
                "teacher_features": teacher_features.detach().float(),
            }
        # Under AMP, autocast would run matmuls (rkd's Gram matrices) in half precision even on
        # the fp32 inputs cast above; the losses are cheap next to the network, so stay in fp32.
        with _autocast_disabled(student_logits.device):
            student = student_logits.float()
            ce = F.cross_entropy(student, labels)
            term = distill(
                student,
                labels,
                teacher_logits.detach().float(),
                temperature=temperature,
                **features,
                **options,
            )
            return (1.0 - alpha) * ce + alpha * term

    fn.__name__ = fn.__qualname__ = f"{name}_loss"
    fn.__doc__ = distill.__doc__
    return fn


def _autocast_disabled(device: torch.device) -> contextlib.AbstractContextManager[object]:
    # torch.autocast raises for device types without AMP (meta, some backends), even when
    # asked to disable it; there is nothing to disable on those.
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _kl_per_sample(student_log_probs: Tensor, teacher_log_probs: Tensor) -> Tensor:
    """KL(teacher || student) of each row, from log-probabilities."""
    return F.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True).sum(1)


def _soft_kl_per_sample(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float
) -> Tensor:
    """Hinton's per-sample KL at temperature T, times T^2 so gradients keep their scale in T."""
    return (
        _kl_per_sample(
            F.log_softmax(student_logits / temperature, dim=1),
            F.log_softmax(teacher_logits / temperature, dim=1),
        )
        * temperature**2
    )


@register_loss("kd", needs_features=False)
def kd(
    student_logits: Tensor, labels: Tensor, teacher_logits: Tensor, *, temperature: float
) -> Tensor:
    """Hinton et al. 2015: KL(softmax(t/T) || softmax(s/T)) * T^2, averaged over the batch."""
    return _soft_kl_per_sample(student_logits, teacher_logits, temperature).mean()


@register_loss("mse", needs_features=False)
def mse(
    student_logits: Tensor, labels: Tensor, teacher_logits: Tensor, *, temperature: float
) -> Tensor:
    """Logit matching (Ba & Caruana 2014): squared error averaged over samples and classes.

    The mean over classes, not the sum, keeps the term's scale independent of the class count
    so one alpha range suits every dataset. ``temperature`` is unused.
    """
    return F.mse_loss(student_logits, teacher_logits)


def _standardized(logits: Tensor) -> Tensor:
    """Each row z-scored: mean 0, (unbiased) standard deviation 1."""
    mean = logits.mean(1, keepdim=True)
    return (logits - mean) / (logits.std(1, keepdim=True) + _EPS)


@register_loss("lskd", needs_features=False)
def lskd(
    student_logits: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float,
    weight: float = 9.0,
) -> Tensor:
    """Logit-standardised KD (Sun et al., CVPR 2024): Hinton's KD on z-scored logits, x weight.

    Each row of the student's and the teacher's logits is standardised before the softmax at
    ``temperature``, so the student matches the teacher's logit relations without having to
    match their range, which a small student may not reach. The paper's CIFAR-100 recipe is
    base temperature 2 with loss weights CE 0.1 and KD 9; with the CE mixing here, alpha 0.9 and
    the default ``weight`` 9 give CE 0.1 and KD 8.1.
    """
    standardized = _soft_kl_per_sample(
        _standardized(student_logits), _standardized(teacher_logits), temperature
    )
    return weight * standardized.mean()


def _binary_log_probs(scaled_logits: Tensor, target: Tensor) -> Tensor:
    """log [p_target, 1 - p_target] per row, shape (N, 2).

    Both come from logsumexp differences: forming 1 - p_target in floating point gives exactly 0
    for a confident network, and log(0) poisons the loss and its gradient.
    """
    log_all = scaled_logits.logsumexp(1)
    log_target = scaled_logits[target] - log_all
    log_rest = scaled_logits.masked_fill(target, _MASKED_LOGIT).logsumexp(1) - log_all
    return torch.stack([log_target, log_rest], dim=1)


@register_loss("dkd", needs_features=False)
def dkd(
    student_logits: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float,
    beta: float = 8.0,
) -> Tensor:
    """Decoupled KD (Zhao et al., CVPR 2022): (TCKD + beta * NCKD) * T^2, batch mean.

    TCKD is the KL between the binary (target, rest) distributions, NCKD the KL among the
    non-target classes alone. Classic KD is TCKD + (1 - p_target^teacher) * NCKD; DKD frees the
    NCKD weight from the teacher's confidence. The paper's TCKD weight is 1 here, since the
    CE mixing already has its own alpha.
    """
    target = F.one_hot(labels, student_logits.shape[1]).bool()
    student = student_logits / temperature
    teacher = teacher_logits / temperature
    tckd = _kl_per_sample(_binary_log_probs(student, target), _binary_log_probs(teacher, target))
    nckd = _kl_per_sample(
        F.log_softmax(student.masked_fill(target, _MASKED_LOGIT), dim=1),
        F.log_softmax(teacher.masked_fill(target, _MASKED_LOGIT), dim=1),
    )
    return ((tckd + beta * nckd) * temperature**2).mean()


def _correlation_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """1 - the mean over rows of the Pearson correlation between each student and teacher row.

    A row with no spread (all equal) has correlation 0 with anything: the product of the norms
    is clamped, not offset, so rows with a small spread (probabilities at a high temperature)
    keep their exact correlation.
    """
    student = student - student.mean(1, keepdim=True)
    teacher = teacher - teacher.mean(1, keepdim=True)
    norms = (student.norm(dim=1) * teacher.norm(dim=1)).clamp_min(_EPS)
    return 1.0 - ((student * teacher).sum(1) / norms).mean()


@register_loss("dist", needs_features=False)
def dist(
    student_logits: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float,
    beta: float = 2.0,
    gamma: float = 2.0,
) -> Tensor:
    """DIST (Huang et al., NeurIPS 2022): match the teacher's relations, not its probabilities.

    On the probabilities at ``temperature``, (1 - Pearson correlation) between each student
    row and the teacher's (inter-class: the ranking of classes within an image) and between
    each student column and the teacher's (intra-class: how the batch's images compare on a
    class), times T^2, weighted ``beta`` and ``gamma``. Correlation is blind to the scale and
    shift of the probabilities, so a student too small to be as sure as a stronger teacher is
    not pushed to be. For CIFAR-100 we read the paper's weights as CE 1, beta 2, gamma 2 at
    T 4: with the CE mixing here, ``--kd dist,4,0.5`` keeps those ratios (CE 0.5, each term 1). The
    intra-class term is a relation inside the batch: it needs more than one image.
    """
    student = F.softmax(student_logits / temperature, dim=1)
    teacher = F.softmax(teacher_logits / temperature, dim=1)
    inter = _correlation_distance(student, teacher)
    intra = _correlation_distance(student.T, teacher.T)
    return temperature**2 * (beta * inter + gamma * intra)


def _relations(features: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise distances over their mean, (N, N), and triplet angle cosines, (N, N, N).

    ``angles[i, j, k]`` is the cosine of the angle at sample i between samples j and k. Both
    come from the Gram matrix, so memory is O(N^3) whatever the feature width (differences
    e_j - e_i would take N * N * width). Centring first removes the cancellation a large common
    offset would cause in |a|^2 + |b|^2 - 2ab; the relations are translation invariant anyway.
    """
    flat = features.reshape(len(features), -1)
    flat = flat - flat.mean(0, keepdim=True)
    gram = flat @ flat.T
    norms = gram.diagonal()
    squared = (norms[:, None] + norms[None, :] - 2 * gram).clamp_min(0.0)
    same = torch.eye(len(flat), dtype=torch.bool, device=flat.device)
    # The clamp keeps sqrt's gradient finite at the zero diagonal (and at duplicate samples):
    # below the clamp the gradient is 0, not sqrt'(0) = inf.
    distances = squared.clamp_min(_EPS**2).sqrt().masked_fill(same, 0.0)
    off_diagonal_mean = distances[~same].mean().clamp_min(_EPS)
    # <e_j - e_i, e_k - e_i> = G_jk - G_ij - G_ik + G_ii
    inner = gram[None, :, :] - gram[:, :, None] - gram[:, None, :] + norms[:, None, None]
    lengths = distances.clamp_min(_EPS)
    cosines = inner / (lengths[:, :, None] * lengths[:, None, :])
    # A triplet with j == i or k == i has no angle; 0 matches normalising a zero vector to 0 as
    # the paper's code does, where the division above would amplify rounding noise instead.
    degenerate = same[:, :, None] | same[:, None, :]
    return distances / off_diagonal_mean, cosines.masked_fill(degenerate, 0.0)


@register_loss("rkd", needs_features=True)
def rkd(
    student_logits: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float,
    student_features: Tensor,
    teacher_features: Tensor,
    distance_weight: float = 25.0,
    angle_weight: float = 50.0,
) -> Tensor:
    """Relational KD (Park et al., CVPR 2019) on penultimate features: distance + angle losses.

    Only relations inside the batch are compared, so student and teacher widths may differ,
    and the loss is unchanged by rotating, scaling or translating either feature set. As in
    the paper's code the smooth-L1 means run over all N^2 pairs and N^3 triplets, degenerate
    ones included, which is the scale the default weights 25 and 50 were tuned for.
    ``temperature`` is unused.
    """
    student_distances, student_angles = _relations(student_features)
    teacher_distances, teacher_angles = _relations(teacher_features)
    return distance_weight * F.smooth_l1_loss(
        student_distances, teacher_distances
    ) + angle_weight * F.smooth_l1_loss(student_angles, teacher_angles)


def wsl_weights(student_logits: Tensor, labels: Tensor, teacher_logits: Tensor) -> Tensor:
    """Per-sample weights of ``wsl``: 1 - exp(-CE_student / CE_teacher), each in [0, 1].

    Mathematically below 1; it rounds to 1 where the teacher is near-certain of the label.

    The weight is large where the student lags the teacher on the label and small where the
    student already does better, the samples on which the teacher's soft labels add most
    variance (Zhou et al., ICLR 2021). Computed without gradient: it weights, it is not trained.
    """
    with torch.no_grad():
        student_ce = F.cross_entropy(student_logits.float(), labels, reduction="none")
        teacher_ce = F.cross_entropy(teacher_logits.float(), labels, reduction="none")
        return 1.0 - torch.exp(-student_ce / (teacher_ce + _EPS))


@register_loss("wsl", needs_features=False)
def wsl(
    student_logits: Tensor, labels: Tensor, teacher_logits: Tensor, *, temperature: float
) -> Tensor:
    """Weighted soft labels (Zhou et al., ICLR 2021): per-sample KD weighted by ``wsl_weights``.

    The cross-entropies behind the weights use the logits at temperature 1, as the paper's
    code does; the KL uses ``temperature``.
    """
    weights = wsl_weights(student_logits, labels, teacher_logits)
    return (weights * _soft_kl_per_sample(student_logits, teacher_logits, temperature)).mean()
