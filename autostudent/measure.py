"""Size and speed of a network: parameters, FLOPs and batch-1 latency."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(module: nn.Module) -> int:
    """Every parameter of the whole module (convs, BN, head): counting only conv weights
    undercounts, the trap of the public NAGO code."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def count_flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of one example (torch.utils.flop_counter; a multiply-add = 2)."""
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        module(torch.zeros(1, *input_shape, device=device))
    module.train(was_training)
    return int(counter.get_total_flops())


@torch.inference_mode()
def latency_ms(module: nn.Module, input_shape: tuple[int, ...], repeats: int = 30, warmup: int = 5) -> float:
    """Median wall time of a batch-1 forward pass in milliseconds, in eval mode."""
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    x = torch.zeros(1, *input_shape, device=device)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        module(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    module.train(was_training)
    return 1000.0 * statistics.median(times)
