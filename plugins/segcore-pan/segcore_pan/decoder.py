"""The PAN decoder: a Feature Pyramid Attention block, then Global Attention Upsample blocks.

The module tree (``fpa.branch1/mid/down1/down2/down3/conv2/conv1``, ``gau3``/``gau2``/``gau1``
with ``conv1`` (channel attention) and ``conv2`` (projection), each convolution a ``ConvBnRelu``
with children ``conv``, ``activation``, ``bn``) is SMP's, so an SMP PAN checkpoint loads
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.nn import check_pyramid_decoder_inputs


def _resize(x: torch.Tensor, size: list[int], mode: str) -> torch.Tensor:
    """``F.interpolate`` to ``size``; bilinear resizing keeps the corners aligned (as SMP)."""
    align_corners: bool | None = True if mode == "bilinear" else None
    return F.interpolate(x, size=size, mode=mode, align_corners=align_corners)


class ConvBnRelu(nn.Module):
    """Convolution (with bias) -> BatchNorm2d -> ReLU (left out when ``add_relu=False``).

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)`` for ``padding =
    kernel_size // 2``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        add_relu: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=True)
        self.activation = nn.ReLU(inplace=True)
        self.bn = nn.BatchNorm2d(out_channels)
        self.add_relu = add_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.activation(x) if self.add_relu else x


class FPABlock(nn.Module):
    """Feature Pyramid Attention on the deepest encoder features.

    Three max-pooled copies of the input (1/2, 1/4, 1/8 of its size) go through 7x7, 5x5 and
    two 3x3 single-channel convolutions; their sum, built coarse to fine (bilinear, corners
    aligned) and refined at 1/4 and 1/2 by a 5x5 and a 7x7 convolution, weights a 1x1
    projection of the input pixel by pixel. A 1x1 projection of the global average is added.

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)``; ``h`` and ``w`` must be
    at least 8 (three 2x2 poolings leave at least one pixel).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), ConvBnRelu(in_channels, out_channels, kernel_size=1)
        )
        self.mid = nn.Sequential(ConvBnRelu(in_channels, out_channels, kernel_size=1))
        self.down1 = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2),
            ConvBnRelu(in_channels, 1, kernel_size=7, padding=3),
        )
        self.down2 = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2), ConvBnRelu(1, 1, kernel_size=5, padding=2)
        )
        self.down3 = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2),
            ConvBnRelu(1, 1, kernel_size=3, padding=1),
            ConvBnRelu(1, 1, kernel_size=3, padding=1),
        )
        self.conv2 = ConvBnRelu(1, 1, kernel_size=5, padding=2)
        self.conv1 = ConvBnRelu(1, 1, kernel_size=7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        context = _resize(self.branch1(x), [height, width], "bilinear")
        projected = self.mid(x)
        half = self.down1(x)
        quarter = self.down2(half)
        eighth = self.down3(quarter)
        attention = _resize(eighth, [height // 4, width // 4], "bilinear")
        attention = self.conv2(quarter) + attention
        attention = _resize(attention, [height // 2, width // 2], "bilinear")
        attention = attention + self.conv1(half)
        attention = _resize(attention, [height, width], "bilinear")
        return attention * projected + context


class GAUBlock(nn.Module):
    """Global Attention Upsample: join a coarser decoder map and a finer encoder feature.

    The coarser map ``y`` is resized to the size of the encoder feature ``x`` (with
    ``interpolation_mode``) and added to a 3x3 projection of ``x`` that is weighted channel by
    channel by ``sigmoid(BN(conv1x1(global average of y)))``.

    Shapes: ``x`` ``(N, in_channels, H, W)``, ``y`` ``(N, out_channels, h, w)`` ->
    ``(N, out_channels, H, W)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, interpolation_mode: str = "bilinear"
    ) -> None:
        super().__init__()
        self.interpolation_mode = interpolation_mode
        self.conv1 = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvBnRelu(out_channels, out_channels, kernel_size=1, add_relu=False),
            nn.Sigmoid(),
        )
        self.conv2 = ConvBnRelu(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        upsampled = _resize(y, [x.shape[-2], x.shape[-1]], self.interpolation_mode)
        return upsampled + self.conv2(x) * self.conv1(y)


class PANDecoder(nn.Module):
    """FPA on the deepest encoder feature, then one GAU block per shallower stage down to 1/4.

    ``gau<k>`` joins the encoder feature ``features[k + 1]`` (``gau1``: reduction 4, ``gau2``:
    8, ``gau3``: 16); there are ``encoder_depth - 2`` of them, applied deepest first.

    Args:
        encoder_channels: the encoder's ``out_channels`` (the input first).
        encoder_depth: stages the encoder returns, 3-5.
        decoder_channels: channels of the FPA output and of every GAU block.
        interpolation_mode: resizing mode of the GAU blocks (the FPA block is always bilinear).

    Shapes: features as the encoder returns them -> ``(N, decoder_channels, H / 4, W / 4)``
    (the size of ``features[2]``).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_depth: int = 5,
        decoder_channels: int = 32,
        interpolation_mode: str = "bilinear",
    ) -> None:
        super().__init__()
        check_pyramid_decoder_inputs("PAN", encoder_channels, encoder_depth,
                                     reason="it reads the features at reduction 4 and deeper")
        self.out_channels = decoder_channels
        self.fpa = FPABlock(encoder_channels[-1], decoder_channels)
        for level in range(encoder_depth - 2, 0, -1):  # gau3 (at depth 5), gau2, gau1
            block = GAUBlock(encoder_channels[level + 1], decoder_channels, interpolation_mode)
            self.add_module(f"gau{level}", block)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        out = self.fpa(features[-1])
        # deepest first; TorchScript resolves hasattr when it compiles the module
        if hasattr(self, "gau3"):
            out = self.gau3(features[4], out)
        if hasattr(self, "gau2"):
            out = self.gau2(features[3], out)
        return self.gau1(features[2], out)
