"""A training loop's whole state after a finished epoch, in one file: the weights, the one-cycle
optimizer's step and momenta, the loop's random stream (batch order, crops, flips, mixes), the
global torch stream and the float16 GradScaler. A training killed mid-way and started again
from it reaches the weights of a run never stopped. Teacher training (``zoo.train_teacher``,
``teacher train --checkpoint``) and export's retrains (``retrain.retrain``) keep one.

Written to ``.<name>.partial`` and renamed, so a kill mid-write leaves the last whole epoch (and
the next save overwrites the partial file); read with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


class TrainingState:
    """The live objects of one training loop whose state a checkpoint holds."""

    def __init__(self, model: nn.Module, opt, gen: torch.Generator, scaler) -> None:
        self.model, self.opt, self.gen, self.scaler = model, opt, gen, scaler

    def snapshot(self, copy: bool = False) -> dict:
        """The state as plain tensors and numbers; ``copy``: the weights cloned, to restore
        later even after training moved them."""
        weights = self.model.state_dict()
        return {
            "model": {k: v.clone() for k, v in weights.items()} if copy else weights,
            "optimizer": self.opt.state_dict(), "scaler": self.scaler.state_dict(),
            "generator": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
        }  # fmt: skip

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty: saved with the scaler disabled (float32, bfloat16)
            self.scaler.load_state_dict(state["scaler"])
        self.gen.set_state(state["generator"])
        if "torch_rng" in state:  # teacher checkpoints written before it was kept
            torch.set_rng_state(state["torch_rng"])

    def save(self, path: Path, **about) -> None:
        """The state and ``about`` (the epoch, what run it is) to ``path``, atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")  # one writer per file: a fixed name
        torch.save({**about, **self.snapshot()}, partial)
        os.replace(partial, path)


def read_checkpoint(path: Path) -> dict:
    """A checkpoint's contents (raises on a file cut short or not plain data)."""
    return torch.load(path, map_location="cpu", weights_only=True)
