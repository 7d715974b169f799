"""The training-loop pieces shared by teacher training, KD trials and the final export retrain.

Data lives in memory as tensors, so batches are index slices: no DataLoader, no worker
processes, nothing between the optimizer and the two cores but the model itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn


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
    n, _, h, w = x.shape
    if fill is None:
        padded = nn.functional.pad(x, (pad, pad, pad, pad))
    else:
        fill = fill.to(x).reshape(1, -1, 1, 1)
        padded = nn.functional.pad(x - fill, (pad, pad, pad, pad)) + fill
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    out = padded[
        torch.arange(n)[:, None, None, None],
        torch.arange(x.shape[1])[None, :, None, None],
        rows,
        cols,
    ]
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out[mask] = out[mask].flip(-1)
    return out


def sgd(model: nn.Module, lr: float, weight_decay: float, total_steps: int):
    """Nesterov SGD with a one-cycle schedule: the fastest reliable start for short budgets."""
    decay, no_decay = [], []
    for p in model.parameters():
        # BatchNorm and bias parameters are not weight-decayed (standard practice for small nets).
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=0.9,
        nesterov=True,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(total_steps, 1), pct_start=0.25, anneal_strategy="cos"
    )
    return opt, sched


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
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device, non_blocking=True)
        if xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        logits = predict(xb)
        correct += (logits.argmax(1).cpu() == y[start : start + batch_size]).sum().item()
    return correct / max(len(x), 1)
