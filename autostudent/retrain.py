"""The full retrain of a chosen student: from scratch, on the whole training split, with KD or
without it (the no-KD baseline), optionally with data augmentation.

It runs the search's own loop (``trial.distill_epoch``, one-cycle SGD from ``training.sgd``) for
more epochs and on more data. With augmentation the teacher's targets must follow the images,
and there are two ways (``AUGMENT_MODES``): ``cached`` keeps the clean-image logits from the
teacher-output cache (free, but the target belongs to a slightly different image), ``online``
runs the teacher on every augmented batch (a teacher forward per step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autostudent.datasets import Data
from autostudent.errors import UserError
from autostudent.losses import kd_loss
from autostudent.progress import TrainingProgress
from autostudent.registry import Registry
from autostudent.student import build_student
from autostudent.teacher import Teacher
from autostudent.teacher_outputs import TeacherOutputs
from autostudent.training import augment, sgd, steps_per_epoch
from autostudent.trial import (
    Budget,
    KDSettings,
    Objective,
    TeacherBatch,
    cached_teacher,
    distill_epoch,
    kd_objective,
)

# Datasets whose labels survive a horizontal flip (a mirrored shirt is a shirt; a mirrored
# digit is not a digit).
FLIP_INVARIANT = frozenset({"fashion-mnist", "cifar10", "cifar100"})


@dataclass(frozen=True)
class AugmentMode:
    augments: bool  # random crop (+ flip where the labels allow) on every training batch
    online_teacher: bool  # the teacher runs on the augmented batch instead of the cache


AUGMENT_MODES: Registry[AugmentMode] = Registry("augment mode")
AUGMENT_MODES.register("none")(AugmentMode(augments=False, online_teacher=False))
AUGMENT_MODES.register("cached")(AugmentMode(augments=True, online_teacher=False))
AUGMENT_MODES.register("online")(AugmentMode(augments=True, online_teacher=True))


def augment_mode(name: str) -> AugmentMode:
    try:
        return AUGMENT_MODES.get(name)
    except UserError as exc:
        raise UserError(f"--augment: {exc}") from None


def augmentation(data: Data) -> dict:
    """What augmentation does to this dataset's images (stored in metrics.json)."""
    return {
        "crop_pad": max(1, round(data.input_shape[1] / 14)),
        "flip": data.name in FLIP_INVARIANT,
    }


def full_training_split(data: Data) -> Data:
    """Train + validation as one training split: the search is over, nothing is selected on
    validation any more, and the test split stays untouched for the final figures. A new
    identity keys its own teacher-output cache entry."""
    return replace(
        data,
        x_train=np.concatenate([data.x_train, data.x_val]),
        y_train=np.concatenate([data.y_train, data.y_val]),
        identity=f"{data.identity}-full",
    )


@dataclass
class Retrained:
    model: nn.Module  # eval mode
    seconds: float  # training time (no evaluation inside)
    epoch_seconds: list[float]


def online_teacher(teacher: Teacher, features: bool) -> TeacherBatch:
    """Teacher outputs of the batch the student sees (augmented): one teacher forward a step."""

    @torch.no_grad()  # not inference_mode: the KD loss keeps the targets for backward
    def forward(_idx: torch.Tensor, xb: torch.Tensor):
        logits, feats = teacher.forward_with_features(xb)
        return logits.float(), feats.flatten(1).float() if features and feats is not None else None

    return forward


def _no_teacher(_idx: torch.Tensor, _xb: torch.Tensor):
    return None, None


def _cross_entropy(logits, labels, _t_logits, _s_feats, _t_feats) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def retrain(
    spec: dict,
    data: Data,
    *,
    kd: KDSettings | None,
    outputs: TeacherOutputs,
    teacher: Teacher,
    budget: Budget,
    seed: int,
    augment_with: str = "none",
    device: str = "cpu",
    label: str = "retrain",
) -> Retrained:
    """Train ``spec`` from scratch on ``data.x_train`` for ``budget.epochs``: with the KD loss
    and settings ``kd``, or plain cross-entropy when ``kd`` is None. The same seed gives the same
    initial weights, batch order and augmentations with and without KD."""
    mode = augment_mode(augment_with)
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = build_student(spec).to(dev)
    features = kd is not None and kd_loss(kd.loss).needs_features
    if features and outputs.features is None:
        raise UserError(f"kd_loss: {kd.loss!r} needs teacher features; this teacher exposes none")
    objective: Objective = _cross_entropy if kd is None else kd_objective(kd)
    if kd is None:
        teacher_batch: TeacherBatch = _no_teacher
    elif mode.online_teacher:
        teacher_batch = online_teacher(teacher, features)
    else:
        teacher_batch = cached_teacher(outputs, dev, features)

    x = torch.from_numpy(data.x_train).to(dev)
    y = torch.from_numpy(data.y_train).to(dev)
    gen = torch.Generator().manual_seed(seed)
    transform = None
    if mode.augments:
        how = augmentation(data)
        # pad with black (the normalised value of a 0 pixel), the background of these images
        black = -torch.tensor(data.mean) / torch.tensor(data.std)

        def transform(xb: torch.Tensor) -> torch.Tensor:
            return augment(xb, gen, pad=how["crop_pad"], flip=how["flip"], fill=black)

    steps = steps_per_epoch(len(x), budget.batch_size)
    opt = sgd(model, budget.lr, budget.weight_decay, budget.epochs * steps)
    epoch_seconds = []
    with TrainingProgress(label, budget.epochs, steps) as progress:
        for epoch in range(1, budget.epochs + 1):
            started = time.perf_counter()
            distill_epoch(
                model,
                x,
                y,
                teacher_batch,
                objective,
                opt,
                budget.batch_size,
                gen,
                features=features,
                epoch=epoch,
                transform=transform,
                on_step=progress.step,
            )
            epoch_seconds.append(time.perf_counter() - started)
            progress.epoch(epoch, epoch_seconds[-1])
    return Retrained(model.eval(), sum(epoch_seconds), epoch_seconds)
