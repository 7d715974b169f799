"""The training-loop pieces shared by teacher training, KD trials and the final export retrain.

Data lives in memory as tensors, so batches are index slices: no DataLoader, no worker
processes, nothing between the optimizer and the two cores but the model itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from autostudent.device import precision


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Shuffled index batches covering range(n) once; the last, smaller batch is dropped when it
    would be tiny (BatchNorm needs more than one example)."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if len(idx) > 1:
            yield idx


def augment(
    x: torch.Tensor,
    generator: torch.Generator,
    pad: int = 2,
    flip: bool = True,
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """Random crop (padding ``pad``) and horizontal flip per example of a normalised batch.

    The padding is 0 (the mean pixel, after normalisation) unless ``fill`` gives a value per
    channel, e.g. the normalised value of a black pixel for images on a black background."""
    n = x.shape[0]
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if flip else None
    return crop_flip(x, dy, dx, flips, pad=pad, fill=fill)


def crop_flip(
    x: torch.Tensor,
    dy: torch.Tensor,
    dx: torch.Tensor,
    flips: torch.Tensor | None,
    *,
    pad: int,
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """The deterministic half of ``augment``: example i cropped at offset (``dy[i]``,
    ``dx[i]``) of the padded image and mirrored where ``flips[i]``. Given the same offsets and
    flags it regenerates the same pixels, so a stored view needs only three small numbers."""
    n, _, h, w = x.shape
    if fill is None:
        padded = nn.functional.pad(x, (pad, pad, pad, pad))
    else:
        fill = fill.to(x).reshape(1, -1, 1, 1)
        padded = nn.functional.pad(x - fill, (pad, pad, pad, pad)) + fill
    dy, dx = dy.to(x.device, torch.long), dx.to(x.device, torch.long)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    out = padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None, None],
        rows,
        cols,
    ]
    if flips is not None:
        mask = flips.to(x.device, torch.bool)
        out[mask] = out[mask].flip(-1)
    return out


class OneCycleSGD:
    """Nesterov SGD (momentum cycled 0.95 → 0.85 → 0.95) on a one-cycle cosine learning-rate
    schedule: the fastest reliable start for short budgets. The numbers are those of
    ``torch.optim.SGD(nesterov=True)`` stepped with ``OneCycleLR(pct_start=0.25,
    anneal_strategy="cos")`` (a test holds the two equal); it is written out because the first
    ``torch.optim`` optimizer of a process imports ``torch._dynamo`` (1.2-1.9 s on 2 cores),
    which every Ray worker of every search would pay before its first trial.

    ``step()`` updates the parameters and advances the schedule; BatchNorm and bias parameters
    (``ndim <= 1``) are not weight-decayed (standard practice for small nets)."""

    pct_start = 0.25
    div_factor = 25.0
    final_div_factor = 1e4
    momenta = (0.85, 0.95)  # (base, max)

    def __init__(self, model: nn.Module, lr: float, weight_decay: float, total_steps: int):
        params = [p for p in model.parameters() if p.requires_grad]
        self.groups = [
            ([p for p in params if p.ndim > 1], weight_decay),
            ([p for p in params if p.ndim <= 1], 0.0),
        ]
        self.buffers: dict[torch.Tensor, torch.Tensor] = {}
        self.max_lr = lr
        self.total_steps = max(total_steps, 1)
        self.steps = 0

    @property
    def param_groups(self) -> list[dict]:
        """torch.optim's view of the parameters: what ``torch.amp.GradScaler`` unscales."""
        return [{"params": group} for group, _ in self.groups]

    def schedule(self, step: int) -> tuple[float, float]:
        """(learning rate, momentum) of optimizer step ``step`` (0-based): cosine from
        lr/25 up to lr over the first quarter, then down to lr/25e4; momentum the other way."""
        low, high = self.momenta
        initial = self.max_lr / self.div_factor
        phases = (  # (last step of the phase, start and end lr, start and end momentum)
            (self.pct_start * self.total_steps - 1, initial, self.max_lr, high, low),
            (self.total_steps - 1, self.max_lr, initial / self.final_div_factor, low, high),
        )
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
            if step <= end or i == len(phases) - 1:
                pct = (step - start) / (end - start) if end != start else 1.0
                cos = math.cos(math.pi * pct) + 1
                return lr1 + (lr0 - lr1) / 2.0 * cos, m1 + (m0 - m1) / 2.0 * cos
            start = end
        raise AssertionError("unreachable: the last phase always matches")

    def state_dict(self) -> dict:
        """Step count and momentum buffers (by parameter order, None where no step was taken):
        what a resumed training needs to continue exactly where it stopped."""
        params = [p for group, _ in self.groups for p in group]
        return {"steps": self.steps, "buffers": [self.buffers.get(p) for p in params]}

    def load_state_dict(self, state: dict) -> None:
        params = [p for group, _ in self.groups for p in group]
        self.steps = int(state["steps"])
        pairs = zip(params, state["buffers"], strict=True)  # another model: ValueError
        self.buffers = {p: buf.to(p.device) for p, buf in pairs if buf is not None}

    def zero_grad(self) -> None:
        for group, _ in self.groups:
            for p in group:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # a step past the planned last one keeps the last one's lr (the cosine would climb back)
        lr, momentum = self.schedule(min(self.steps, self.total_steps - 1))
        for group, weight_decay in self.groups:
            for p in group:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=weight_decay) if weight_decay else p.grad
                buf = self.buffers.get(p)
                if buf is None:
                    buf = self.buffers[p] = grad.detach().clone()
                else:
                    buf.mul_(momentum).add_(grad)
                p.add_(grad.add(buf, alpha=momentum), alpha=-lr)
        self.steps += 1


class WeightAverage:
    """An exponential moving average of a model's floating-point state — weights and BatchNorm
    statistics alike — kept in a copy of the model, updated after every optimizer step.

    What a rung reads mid-schedule: near the one-cycle's peak learning rate the model itself
    swings from step to step, and its validation accuracy with it (on the demo's task, the runs
    of one trial on two processors read 8.7 points apart after epoch 1, on average over 40). A
    short average (``decay`` 0.9: the last ~10 steps) smooths that swing; a long one (0.99 and
    up) averages across a trajectory that is still moving and reads near chance. Measured in
    ``studies/results/rung_ema`` (docs/study-file.md, early stopping)."""

    def __init__(self, model: nn.Module, decay: float):
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model)
        live, avg = model.state_dict().values(), self.model.state_dict().values()
        pairs = list(zip(live, avg, strict=True))
        self._live = [a for a, _ in pairs if a.is_floating_point()]
        self._avg = [b for a, b in pairs if a.is_floating_point()]
        self._counters = [(a, b) for a, b in pairs if not a.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_mul_(self._avg, self.decay)
        torch._foreach_add_(self._avg, self._live, alpha=1 - self.decay)
        for live, avg in self._counters:
            avg.copy_(live)


# ``rung_average: auto`` averages over this share of an epoch: 1/16 read a new task's rungs
# better than the model (studies/results/rung_ema/tied), where a fixed decay of 0.9 read a task
# of short epochs worse
AUTO_AVERAGE_SPAN = 1 / 16


def rung_decay(setting: float | str | None, steps: int) -> float | None:
    """The decay of the weight average a rung reads for ``budget.rung_average`` (a decay,
    ``"auto"`` or None) at ``steps`` optimizer steps an epoch; None: the model itself."""
    if setting != "auto":
        return setting  # type: ignore[return-value]
    decay = 1 - 1 / (AUTO_AVERAGE_SPAN * steps)
    return decay if decay > 0 else None


def sgd(model: nn.Module, lr: float, weight_decay: float, total_steps: int) -> OneCycleSGD:
    """The optimizer every training loop here uses: see ``OneCycleSGD``."""
    return OneCycleSGD(model, lr, weight_decay, total_steps)


def steps_per_epoch(n: int, batch_size: int) -> int:
    full, rest = divmod(n, batch_size)
    return full + (1 if rest > 1 else 0)


@torch.inference_mode()
def accuracy(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
) -> float:
    """Top-1 accuracy of ``predict`` (logits from a batch) on in-memory data.

    Batches of 256 in channels-last layout: on the 2-core CPU larger batches fall out of cache
    and evaluate up to 2x slower, and students run channels-last."""
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    correct = 0
    amp = precision(device)  # autocast on a GPU, nothing on the CPU
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device, non_blocking=True)
        if xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with amp.autocast():
            logits = predict(xb)
        correct += (logits.argmax(1).cpu() == y[start : start + batch_size]).sum().item()
    return correct / max(len(x), 1)
