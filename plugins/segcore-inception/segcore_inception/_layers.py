"""Building blocks shared by Inception-v4 and Inception-ResNet-v2.

Convolutions and poolings are padded the way SMP pads these networks (every 3x3 convolution
and every max pooling has padding 1), so a stride-2 step maps ``n`` pixels to ``ceil(n / 2)``
and the encoder's maps have the contract's sizes for any input (no smallest size).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BN_EPS", "ConvBNReLU", "avg_pool", "max_pool"]

#: The TensorFlow ``epsilon`` of the original checkpoints (SMP keeps it).
BN_EPS = 1e-3


def _same_padding(kernel_size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return height // 2, width // 2


class ConvBNReLU(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU: ``conv``, ``bn``, ``relu``.

    Padding is ``kernel_size // 2`` on each axis, so stride 1 keeps the size and stride 2
    gives ``ceil(size / 2)``. Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int] = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=_same_padding(kernel_size), bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def max_pool() -> nn.MaxPool2d:
    """3x3 max pooling with stride 2 and padding 1: ``n`` pixels -> ``ceil(n / 2)``."""
    return nn.MaxPool2d(3, stride=2, padding=1)


def avg_pool() -> nn.AvgPool2d:
    """3x3 average pooling with stride 1 over the valid pixels only (branch 3 of the blocks)."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
