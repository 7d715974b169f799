"""A user's own hand-designed families (``--families user_families:tiny_cnn``), for the tests:
a module outside the package, importable from the tests' directory."""

from __future__ import annotations

from torch import nn


def tiny_cnn(width, *, in_channels, num_classes, input_size):
    """conv → BN → ReLU → pool → linear: the smallest hand-designed student there is."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


class WithSoftmax(nn.Module):
    def __init__(self, width, num_classes):
        super().__init__()
        self.body = tiny_cnn(width, in_channels=1, num_classes=num_classes, input_size=28)

    def forward(self, x):
        return self.body(x).softmax(1)


def softmax_out(width, *, in_channels, num_classes, input_size):
    return WithSoftmax(width, num_classes)


def broken(width, *, in_channels, num_classes, input_size):
    raise ValueError("width must be even")
