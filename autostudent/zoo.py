"""Built-in teachers: ResNet-style networks for small images (28x28 and 32x32 and anything else,
thanks to global pooling), found by name, trained with ``autostudent teacher train``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from autostudent.checkpoint import TrainingState, read_checkpoint
from autostudent.datasets import Data
from autostudent.device import precision
from autostudent.errors import UserError
from autostudent.registry import Registry
from autostudent.training import accuracy, augment, batch_indices, sgd, steps_per_epoch

TEACHERS: Registry[Callable[..., nn.Module]] = Registry("teacher architecture")


class StridedPointwise(nn.Conv2d):
    """A 1x1 convolution of stride s as a stride-1 one on every s-th pixel: the same map and the
    same parameters (``weight``), computed by another kernel. On an AVX2-only CPU (seen on an
    AMD EPYC), torch 2.13's oneDNN ``jit_1x1:avx2`` backward-weights kernel for a strided 1x1
    convolution in channels-last layout with fewer than 8 input channels corrupts the heap (the
    process aborts: "corrupted size vs. prev_size"); students run channels-last, and a ResNet of
    width < 8 has such shortcuts (``tests/test_families.py`` trains one)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        return nn.functional.conv2d(x[:, :, :: s[0], :: s[1]], self.weight)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                StridedPointwise(c_in, c_out, stride), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(out)) + self.shortcut(x)).relu()


class ResNet(nn.Module):
    """Three stages (width, 2·width, 4·width), ``blocks`` basic blocks each; ``body`` gives the
    pooled penultimate features and ``head`` the logits, like every autostudent student."""

    def __init__(self, in_channels: int, num_classes: int, blocks: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        c_in = width
        for stage in range(3):
            c_out = width * 2**stage
            for b in range(blocks):
                layers.append(BasicBlock(c_in, c_out, 2 if stage > 0 and b == 0 else 1))
                c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


@TEACHERS.register("resnet8")
def resnet8(in_channels: int, num_classes: int, width: int = 32) -> nn.Module:
    return ResNet(in_channels, num_classes, blocks=1, width=width)


@TEACHERS.register("resnet14")
def resnet14(in_channels: int, num_classes: int, width: int = 16) -> nn.Module:
    return ResNet(in_channels, num_classes, blocks=2, width=width)


@TEACHERS.register("resnet20")
def resnet20(in_channels: int, num_classes: int, width: int = 16) -> nn.Module:
    return ResNet(in_channels, num_classes, blocks=3, width=width)


def train_teacher(
    arch: str,
    data: Data,
    *,
    epochs: int,
    seed: int,
    width: int | None = None,
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    batch_size: int = 128,
    device: str = "cpu",
    checkpoint: Path | None = None,
    log: Callable[[str], None] = lambda line: print(line, flush=True),
) -> nn.Module:
    """Cross-entropy training of a zoo teacher with crop+flip augmentation (eval mode on return).

    With ``checkpoint``, the whole state (weights, optimizer, augmentation stream) is written
    there after every epoch, and a training started again with the same arguments and data
    continues after the last finished epoch: its teacher equals an uninterrupted run's."""
    torch.manual_seed(seed)
    kwargs = {"width": width} if width else {}
    model = TEACHERS.get(arch)(data.input_shape[0], data.num_classes, **kwargs).to(device)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    opt = sgd(model, lr, weight_decay, epochs * steps_per_epoch(len(x), batch_size))
    amp = precision(device)  # mixed precision on a GPU, float32 on the CPU
    run = dict(arch=arch, width=width, epochs=epochs, seed=seed, lr=lr,
               weight_decay=weight_decay, batch_size=batch_size, data=data.identity)  # fmt: skip
    state = TrainingState(model, opt, gen, amp.scaler)
    done = 0
    if checkpoint is not None and checkpoint.exists():
        done = _resume(checkpoint, run, state)
        log(f"resuming after epoch {done}/{epochs} from {checkpoint}")
    for epoch in range(done + 1, epochs + 1):
        model.train()
        started = time.perf_counter()
        for idx in batch_indices(len(x), batch_size, gen):
            xb = augment(x[idx], gen).to(device, non_blocking=True)
            with amp.autocast():
                logits = model(xb)
            loss = nn.functional.cross_entropy(logits.float(), y[idx].to(device))
            opt.zero_grad()
            amp.backward_step(loss, opt)
        model.eval()
        val = accuracy(model, data.x_val, data.y_val, device)
        if checkpoint is not None:
            state.save(checkpoint, run=run, epoch=epoch)
        log(
            f"epoch {epoch}/{epochs}  loss {loss.item():.3f}  val {val:.4f}  "
            f"{time.perf_counter() - started:.0f}s"
        )
    return model.eval()


def _resume(path: Path, run: dict, state: TrainingState) -> int:
    """Load a teacher-training checkpoint into the fresh state; the number of finished epochs."""
    try:
        saved = read_checkpoint(path)
        stored = saved["run"]
    except Exception as exc:  # truncated, another format, a pickle that is not plain data
        raise UserError(
            f"{path}: not a teacher-training checkpoint ({type(exc).__name__}); "
            "delete it to start over"
        ) from None
    differ = [key for key in run if stored.get(key) != run[key]]
    if differ:
        key = differ[0]
        raise UserError(
            f"{path}: the checkpoint of another training ({key} {stored.get(key)!r}, "
            f"now {run[key]!r}); delete it to start over, or give the same options"
        )
    state.restore(saved)
    return int(saved["epoch"])
