"""One KD trial: (architecture spec, KD settings, budget, seed) → trained student's metrics.

The teacher never runs here: its logits and features come from the teacher-output cache,
indexed with the same batch indices as the student's inputs — or, when the cache holds K
augmented views of each image, the student sees a random one of them and gets the teacher's
outputs on that very view (consistent teaching). Size, FLOPs and latency are
measured before training, so a student over a hard cap fails in milliseconds, not minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from autostudent import killpoints
from autostudent.datasets import Data
from autostudent.device import Precision
from autostudent.device import precision as device_precision
from autostudent.errors import TrialFailed
from autostudent.losses import kd_loss
from autostudent.measure import measure_latency
from autostudent.objectives import OBJECTIVES
from autostudent.sizes import count_sizes
from autostudent.student import build_student
from autostudent.teacher_outputs import TeacherOutputs, TeacherViews
from autostudent.training import (
    OneCycleSGD,
    WeightAverage,
    accuracy,
    batch_indices,
    rung_decay,
    sgd,
    steps_per_epoch,
)

if TYPE_CHECKING:  # the config models import the search spaces; a Ray worker needs neither
    from autostudent.config import BudgetConfig, CapsConfig

# (indices, clean images of the batch) → (what the student sees, the teacher's logits and
# features (or None) on exactly that): the one seam between the loop and the teacher's targets
Feed = Callable[
    [torch.Tensor, torch.Tensor],
    tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"],
]
Report = Callable[["TrialResult"], None]
# (student logits, labels, teacher logits, student features, teacher features) → loss
Objective = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class KDSettings:
    loss: str = "kd"
    temperature: float = 4.0
    alpha: float = 0.9


@dataclass(frozen=True)
class Budget:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    # validation images before the last epoch (None: all); the last epoch uses all
    rung_val_images: int | None = None
    # before the last epoch, read the weight average of this decay, "auto" (1/16 of an epoch;
    # training.rung_decay) or None: the model itself
    rung_average: float | str | None = None

    @classmethod
    def of(cls, config: BudgetConfig) -> Budget:
        return cls(
            config.epochs,
            config.batch_size,
            config.lr,
            config.weight_decay,
            config.rung_val_images,
            config.rung_average,
        )


@dataclass(frozen=True)
class Caps:
    max_params: int | None = None
    max_flops: int | None = None
    max_latency_ms: float | None = None

    @classmethod
    def of(cls, config: CapsConfig) -> Caps:
        """The caps as numbers: a ``teacher/N`` cap must be ``resolved`` against the teacher."""
        if config.relative:
            raise ValueError(f"caps {config.model_dump()} are not resolved against the teacher")
        return cls(config.max_params, config.max_flops, config.max_latency_ms)


@dataclass
class TrialResult:
    val_accuracy: float
    params: int
    flops: int
    latency_ms: float
    train_seconds: float
    img_per_s: float
    epochs: int
    curve: list[float] = field(default_factory=list)
    # where the worker's time went besides training: build + size/latency, validation
    setup_seconds: float = 0.0
    eval_seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def cap_constraints(sizes: Mapping[str, float], caps: Caps) -> dict[str, float]:
    """``value - cap`` of every capped size in ``sizes`` (Optuna's constraint convention:
    feasible when <= 0), keyed by objective name: what a trial stores so that the sampler's
    constraint model learns where the caps are."""
    out = {}
    for o in OBJECTIVES.values():
        cap = getattr(caps, o.cap_key) if o.cap_key else None
        if cap is not None and o.name in sizes:
            out[o.name] = float(sizes[o.name] - cap)
    return out


def check_caps(params: int, flops: int, latency: float | None, caps: Caps) -> None:
    """Raise TrialFailed (carrying every capped value's constraint) when one is over its cap;
    ``latency`` None: not measured yet."""
    sizes = {"params": params, "flops": flops}
    if latency is not None:
        sizes["latency_ms"] = latency
    constraints = cap_constraints(sizes, caps)
    over = [name for name, excess in constraints.items() if excess > 0]
    if over:
        name = over[0]
        cap = sizes[name] - constraints[name]
        raise TrialFailed(
            f"{name} {sizes[name]:,.6g} over the cap {cap:,.6g}",
            constraints=constraints,
            sizes=sizes,
        )


def cached_teacher(outputs: TeacherOutputs, device: torch.device, features: bool) -> Feed:
    """The clean images and the teacher's cached outputs on them."""
    logits = outputs.logits.to(device)
    feats = outputs.features.to(device) if features and outputs.features is not None else None

    def lookup(idx: torch.Tensor, xb: torch.Tensor):
        return xb, logits[idx], None if feats is None else feats[idx]

    return lookup


def view_teacher(
    views: TeacherViews,
    x: torch.Tensor,
    device: torch.device,
    features: bool,
    generator: torch.Generator,
) -> Feed:
    """A random one of the K stored views of each image (drawn from ``generator`` every step,
    so an image is seen under another view each epoch), with the teacher's outputs on it."""
    if features and views.features is None:
        raise TrialFailed("the teacher-view cache holds no features; this loss needs them")
    logits = views.logits.to(device)
    feats = views.features.to(device) if features else None
    k = views.recipe.k

    def lookup(idx: torch.Tensor, _xb: torch.Tensor):
        view = torch.randint(0, k, (len(idx),), generator=generator).to(idx.device)
        xb = views.images(x, idx, view)
        return xb, logits[idx, view], None if feats is None else feats[idx, view]

    return lookup


def teacher_feed(
    outputs: TeacherOutputs,
    x: torch.Tensor,
    device: torch.device,
    features: bool,
    generator: torch.Generator,
) -> Feed:
    """Views when the cache holds them, else the clean images: what a trial trains on."""
    if outputs.views is not None:
        return view_teacher(outputs.views, x, device, features, generator)
    return cached_teacher(outputs, device, features)


def kd_objective(kd: KDSettings) -> Objective:
    """The loss ``distill_epoch`` minimises for these KD settings."""
    loss = kd_loss(kd.loss)

    def objective(logits, labels, t_logits, s_feats, t_feats):
        return loss.fn(
            logits,
            labels,
            t_logits,
            temperature=kd.temperature,
            alpha=kd.alpha,
            student_features=s_feats,
            teacher_features=t_feats,
        )

    return objective


def run_trial(
    spec: dict,
    kd: KDSettings,
    data: Data,
    outputs: TeacherOutputs,
    *,
    budget: Budget,
    seed: int,
    caps: Caps = Caps(),
    device: str = "cpu",
    report: Report | None = None,
    latency_runtime: str = "torch",
) -> TrialResult:
    """Build the student from ``spec``, distill it for ``budget.epochs`` and measure it.

    ``report(result_so_far)`` is called after every epoch (the executor's early stopping
    listens there and may stop the trial). ``latency_runtime`` measures ``latency_ms``
    (``measure.LATENCY_RUNTIMES``). Raises TrialFailed with a reason for a
    student over a cap or a loss that is not finite.
    """
    dev = torch.device(device)
    setup_started = time.perf_counter()
    torch.manual_seed(seed)
    model = build_student(spec).to(dev)
    shape = data.input_shape
    sizes = count_sizes(spec)  # exact, and ~1000x faster than tracing the FLOPs of the module
    params, flops = sizes.params, sizes.flops
    lat = measure_latency(latency_runtime, model, shape)
    check_caps(params, flops, lat, caps)

    loss = kd_loss(kd.loss)
    if loss.needs_features and outputs.features is None:
        raise TrialFailed(f"KD loss {kd.loss!r} needs teacher features; this teacher exposes none")
    objective = kd_objective(kd)
    x = torch.from_numpy(data.x_train).to(dev)
    y = torch.from_numpy(data.y_train).to(dev)
    gen = torch.Generator().manual_seed(seed)
    teacher = teacher_feed(outputs, x, dev, loss.needs_features, gen)
    steps = steps_per_epoch(len(x), budget.batch_size)
    opt = sgd(model, budget.lr, budget.weight_decay, budget.epochs * steps)
    amp = device_precision(dev)  # one scaler for the whole trial: its scale carries across epochs
    average, decay = None, rung_decay(budget.rung_average, steps)
    if decay is not None and budget.epochs > 1:
        average = WeightAverage(model, decay)
    result = TrialResult(0.0, params, flops, lat, 0.0, 0.0, 0)
    result.setup_seconds = time.perf_counter() - setup_started
    for epoch in range(1, budget.epochs + 1):
        started = time.perf_counter()
        distill_epoch(
            model,
            x,
            y,
            teacher,
            objective,
            opt,
            budget.batch_size,
            gen,
            features=loss.needs_features,
            epoch=epoch,
            on_step=None if average is None else average.update,
            precision=amp,
        )
        killpoints.reached("trial_epoch")  # the fault tests break a trial's own code here
        result.train_seconds += time.perf_counter() - started
        started = time.perf_counter()
        n_val, read = len(data.x_val), model
        if epoch < budget.epochs:
            if budget.rung_val_images is not None:
                # a rung only ranks students: the first images of the (random) split will do
                n_val = min(n_val, budget.rung_val_images)
            if average is not None:  # mid-schedule, the average reads what the model will be
                read = average.model
        result.val_accuracy = accuracy(read.eval(), data.x_val[:n_val], data.y_val[:n_val], dev)
        result.eval_seconds += time.perf_counter() - started
        result.curve.append(result.val_accuracy)
        result.epochs = epoch
        result.img_per_s = len(x) * epoch / max(result.train_seconds, 1e-9)
        if report is not None:
            report(result)
    return result


def distill_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    feed: Feed,
    objective: Objective,
    opt: OneCycleSGD,
    batch_size: int,
    gen: torch.Generator,
    *,
    features: bool,
    epoch: int = 1,
    on_step: Callable[[], None] | None = None,
    precision: Precision | None = None,
) -> None:
    """One pass over the training data; the loop the search runs, the benchmark times and the
    export retrains with. ``feed`` turns each batch into the student's inputs (augmented or
    not) and the teacher's targets on them; ``on_step`` is called after every step (a progress
    bar). The forward passes run under the device's mixed precision (``device.precision``,
    float32 on the CPU); the loss is computed in float32 outside it."""
    amp = precision if precision is not None else device_precision(x.device)
    model.train()
    for step, idx in enumerate(batch_indices(len(x), batch_size, gen)):
        idx = idx.to(x.device)
        with amp.autocast():
            xb, t_logits, t_feats = feed(idx, x[idx])
            if features:
                s_feats = model.body(xb)
                logits = model.head(s_feats)
            else:
                s_feats, logits = None, model(xb)
        if amp.enabled:
            logits = logits.float()
            s_feats = None if s_feats is None else s_feats.float()
            t_logits = None if t_logits is None else t_logits.float()
            t_feats = None if t_feats is None else t_feats.float()
        loss = objective(logits, y[idx], t_logits, s_feats, t_feats)
        opt.zero_grad()
        amp.backward_step(loss, opt)
        # A finite check per step is a device sync; every 20 steps catches divergence early enough.
        if step % 20 == 0 and not math.isfinite(loss.item()):
            raise TrialFailed(f"loss is {loss.item()} at epoch {epoch}, step {step}")
        if on_step is not None:
            on_step()
    if not math.isfinite(loss.item()):
        raise TrialFailed(f"loss is {loss.item()} at the end of epoch {epoch}")
