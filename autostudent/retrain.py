"""The full retrain of a chosen student: from scratch, on the whole training split, with KD or
without it (the no-KD baseline), optionally with data augmentation.

It runs the search's own loop (``trial.distill_epoch``, one-cycle SGD from ``training.sgd``) for
more epochs and on more data. With augmentation the teacher's targets must follow the images,
and there are four ways (``AUGMENT_MODES``): ``cached`` keeps the clean-image logits from the
teacher-output cache (free, but the target belongs to a slightly different image), ``online``
runs the teacher on every augmented batch (a teacher forward per step), ``views`` trains on K
fixed augmented views of each image whose teacher outputs were cached once (consistent, and no
teacher forward in a step), ``mixup`` is Beyer et al.'s function matching: every crop-and-flip
batch is mixed with a shuffled copy of itself and the teacher runs on the mixed images. The
no-KD baseline of an augmenting mode gets the same recipe (mixup included), drawn afresh every
step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from autostudent import killpoints
from autostudent.checkpoint import TrainingState, read_checkpoint
from autostudent.datasets import Data
from autostudent.device import precision
from autostudent.errors import UserError
from autostudent.losses import kd_loss
from autostudent.progress import TrainingProgress
from autostudent.registry import Registry
from autostudent.student import build_student
from autostudent.teacher import Teacher
from autostudent.teacher_outputs import TeacherOutputs, augmentation, view_recipe
from autostudent.training import augment, sgd, steps_per_epoch
from autostudent.trial import (
    Budget,
    Feed,
    KDSettings,
    Objective,
    cached_teacher,
    distill_epoch,
    kd_objective,
    view_teacher,
)

__all__ = ["AUGMENT_MODES", "augmentation", "full_training_split", "retrain"]


@dataclass(frozen=True)
class AugmentMode:
    augments: bool  # random crop (+ flip where the labels allow) on every training batch
    online_teacher: bool = False  # the teacher runs on the augmented batch instead of the cache
    views: bool = False  # K fixed views of each image with their cached teacher outputs
    mixup: bool = False  # each batch mixed with a shuffled copy of itself (labels mixed alike)


AUGMENT_MODES: Registry[AugmentMode] = Registry("augment mode")
AUGMENT_MODES.register("none")(AugmentMode(augments=False))
AUGMENT_MODES.register("cached")(AugmentMode(augments=True))
AUGMENT_MODES.register("online")(AugmentMode(augments=True, online_teacher=True))
AUGMENT_MODES.register("views")(AugmentMode(augments=True, views=True))
AUGMENT_MODES.register("mixup")(AugmentMode(augments=True, online_teacher=True, mixup=True))


def augment_mode(name: str) -> AugmentMode:
    try:
        return AUGMENT_MODES.get(name)
    except UserError as exc:
        raise UserError(f"--augment: {exc}") from None


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
    cpu_seconds: float  # this process's CPU time in training: unlike seconds, a pause adds none


Transform = Callable[[torch.Tensor], torch.Tensor]


def online_teacher(teacher: Teacher, features: bool, transform: Transform) -> Feed:
    """The augmented batch and the teacher's outputs on it: one teacher forward a step."""

    @torch.no_grad()  # not inference_mode: the KD loss keeps the targets for backward
    def forward(_idx: torch.Tensor, xb: torch.Tensor):
        xb = transform(xb)
        logits, feats = teacher.forward_with_features(xb)
        t_feats = feats.flatten(1).float() if features and feats is not None else None
        return xb, logits.float(), t_feats

    return forward


def clean_targets(outputs: TeacherOutputs, dev: torch.device, features: bool, transform) -> Feed:
    """The clean image's cached outputs as the target of its augmented version (``cached``)."""
    lookup = cached_teacher(outputs, dev, features)

    def feed(idx: torch.Tensor, xb: torch.Tensor):
        _, logits, feats = lookup(idx, xb)
        return transform(xb), logits, feats

    return feed


def no_teacher(transform: Transform | None) -> Feed:
    def feed(_idx: torch.Tensor, xb: torch.Tensor):
        return (xb if transform is None else transform(xb)), None, None

    return feed


def _cross_entropy(logits, labels, _t_logits, _s_feats, _t_feats) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


@dataclass
class Mixing:
    """The last batch's mixup: image i became ``weight`` × image i + (1 − ``weight``) × image
    ``partner[i]``. The transform draws it, the objective mixes the labels' losses with it."""

    weight: float = 1.0
    partner: torch.Tensor | None = None


def mixed(transform: Transform, gen: torch.Generator, mixing: Mixing) -> Transform:
    """``transform``, then each image mixed with a partner from the same batch (a random
    permutation) at one weight per batch drawn uniformly from [0, 1]: mixup with Beta(1, 1),
    as Beyer et al. (2022) use it for function matching."""

    def transform_and_mix(xb: torch.Tensor) -> torch.Tensor:
        xb = transform(xb)
        mixing.weight = float(torch.rand((), generator=gen))
        mixing.partner = torch.randperm(len(xb), generator=gen).to(xb.device)
        return mixing.weight * xb + (1.0 - mixing.weight) * xb[mixing.partner]

    return transform_and_mix


def mixed_labels(objective: Objective, mixing: Mixing) -> Objective:
    """``objective`` on a mixed batch: its value with each image's own labels and with its
    partner's, weighted as the images were. A loss's label-free part (the KD term) is the same
    in both, so only what reads the labels (cross-entropy; DKD's and WSL's target class) is
    mixed."""

    def objective_on_mix(logits, labels, t_logits, s_feats, t_feats) -> torch.Tensor:
        own = objective(logits, labels, t_logits, s_feats, t_feats)
        if mixing.partner is None or mixing.weight == 1.0:
            return own
        partners = labels[mixing.partner]
        return mixing.weight * own + (1.0 - mixing.weight) * objective(
            logits, partners, t_logits, s_feats, t_feats
        )

    return objective_on_mix


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
    plain_progress: bool = False,
    checkpoint: Path | None = None,
) -> Retrained:
    """Train ``spec`` from scratch on ``data.x_train`` for ``budget.epochs``: with the KD loss
    and settings ``kd``, or plain cross-entropy when ``kd`` is None. The same seed gives the same
    initial weights and batch order with and without KD (and the same augmentations, except in
    ``views`` mode, where KD draws stored views and the baseline fresh crops). ``views`` needs
    ``outputs.views`` (``teacher_outputs(..., views=K)``). ``plain_progress``: one line per epoch
    even on a terminal (where several processes share it). ``checkpoint``: a file the whole
    training state is written to after every epoch (weights, optimizer, random streams) and, if
    it is there at the start, resumed from — the same weights as a run never stopped."""
    mode = augment_mode(augment_with)
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = build_student(spec).to(dev)
    features = kd is not None and kd_loss(kd.loss).needs_features
    if features and outputs.features is None:
        raise UserError(f"kd_loss: {kd.loss!r} needs teacher features; this teacher exposes none")
    objective: Objective = _cross_entropy if kd is None else kd_objective(kd)
    if mode.views and outputs.views is None:
        raise UserError("--augment: views needs the teacher's outputs on K views (none cached)")

    x = torch.from_numpy(data.x_train).to(dev)
    y = torch.from_numpy(data.y_train).to(dev)
    gen = torch.Generator().manual_seed(seed)
    transform = None
    if mode.augments:
        # the same recipe as the stored views: padding with black, the images' background
        recipe = view_recipe(data, 1)

        def transform(xb: torch.Tensor) -> torch.Tensor:
            return augment(
                xb, gen, pad=recipe.crop_pad, flip=recipe.flip, fill=recipe.fill_tensor()
            )

        if mode.mixup:
            mixing = Mixing()
            transform = mixed(transform, gen, mixing)
            objective = mixed_labels(objective, mixing)

    feed: Feed
    if kd is None:
        feed = no_teacher(transform)
    elif mode.views:
        feed = view_teacher(outputs.views, x, dev, features, gen)
    elif mode.online_teacher:
        feed = online_teacher(teacher, features, transform)
    elif mode.augments:
        feed = clean_targets(outputs, dev, features, transform)
    else:
        feed = cached_teacher(outputs, dev, features)

    steps = steps_per_epoch(len(x), budget.batch_size)
    opt = sgd(model, budget.lr, budget.weight_decay, budget.epochs * steps)
    amp = precision(dev)  # one per retrain: a float16 GradScaler keeps its scale across epochs
    state = TrainingState(model, opt, gen, amp.scaler)
    done, epoch_seconds, cpu_before, unreadable = _resume(checkpoint, state)
    cpu_started = time.process_time()
    console = Console(stderr=True, force_terminal=False) if plain_progress else None
    with TrainingProgress(label, budget.epochs, steps, console) as progress:
        if done:
            progress.resumed(done, f"resumed after epoch {done} from {checkpoint}")
        elif unreadable:
            progress.note(f"{checkpoint} could not be read: training from epoch 1")
        for epoch in range(done + 1, budget.epochs + 1):
            started = time.perf_counter()
            distill_epoch(
                model,
                x,
                y,
                feed,
                objective,
                opt,
                budget.batch_size,
                gen,
                features=features,
                epoch=epoch,
                on_step=progress.step,
                precision=amp,
            )
            epoch_seconds.append(time.perf_counter() - started)
            progress.epoch(epoch, epoch_seconds[-1])
            if checkpoint is not None:
                cpu = cpu_before + time.process_time() - cpu_started
                state.save(checkpoint, epoch=epoch, epoch_seconds=epoch_seconds, cpu_seconds=cpu)
                killpoints.reached("retrain_epoch")  # the fault tests stop a retrain here
    cpu_seconds = cpu_before + time.process_time() - cpu_started
    return Retrained(model.eval(), sum(epoch_seconds), epoch_seconds, cpu_seconds)


def _resume(path: Path | None, state: TrainingState) -> tuple[int, list[float], float, bool]:
    """(epochs done, their seconds, their CPU seconds, whether a file was there but unreadable)
    after loading ``path`` into ``state``; a file cut short or of another version leaves the
    fresh state and the retrain starts at epoch 1 (export's store is keyed by the whole request,
    so a readable file is this retrain's)."""
    if path is None or not path.is_file():
        return 0, [], 0.0, False
    fresh = state.snapshot(copy=True)
    try:
        stored = read_checkpoint(path)
        state.restore(stored)
        seconds = list(stored["epoch_seconds"])
        return int(stored["epoch"]), seconds, float(stored["cpu_seconds"]), False
    except Exception:
        state.restore(fresh)
        return 0, [], 0.0, True
