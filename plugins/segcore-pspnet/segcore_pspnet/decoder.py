"""The PSPNet decoder: a pyramid pooling module on the deepest encoder features.

The module tree (``psp.blocks.<i>.pool.{0,1}``, ``conv``, ``dropout``) is SMP's, so an SMP
PSPNet checkpoint loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.nn import Conv2dReLU, ExportableAdaptiveAvgPool2d, NormOption

#: bin sizes of the pyramid pooling module (the paper's 1x1, 2x2, 3x3 and 6x6)
POOL_SIZES = (1, 2, 3, 6)


class PSPBlock(nn.Module):
    """One pyramid level: average-pool to ``pool_size x pool_size`` bins, 1x1 conv-norm-ReLU,
    bilinear upsampling (``align_corners=True``) back to the input's size.

    The 1x1 level has no normalisation whatever ``use_norm`` says (its convolution gets a
    bias): a batch norm over one value per channel cannot train with a batch of one.

    Children: ``pool`` = ``Sequential(ExportableAdaptiveAvgPool2d, Conv2dReLU)``.

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pool_size: int,
        use_norm: NormOption = "batchnorm",
    ) -> None:
        super().__init__()
        self.pool_size = pool_size
        norm = "identity" if pool_size == 1 else use_norm
        self.pool = nn.Sequential(
            ExportableAdaptiveAvgPool2d((pool_size, pool_size)),
            Conv2dReLU(in_channels, out_channels, kernel_size=1, use_norm=norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = self.pool(x)
        return F.interpolate(pooled, size=size, mode="bilinear", align_corners=True)


class PSPModule(nn.Module):
    """The pyramid pooling module: one ``PSPBlock`` per bin size, each giving
    ``in_channels // len(sizes)`` channels, concatenated with the input (input last).

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)`` with
    ``out_channels = in_channels + len(sizes) * (in_channels // len(sizes))``.
    """

    def __init__(
        self,
        in_channels: int,
        sizes: Sequence[int] = POOL_SIZES,
        use_norm: NormOption = "batchnorm",
    ) -> None:
        super().__init__()
        branch_channels = in_channels // len(sizes)
        self.blocks = nn.ModuleList(
            PSPBlock(in_channels, branch_channels, size, use_norm=use_norm) for size in sizes
        )
        self.out_channels = in_channels + branch_channels * len(sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([block(x) for block in self.blocks] + [x], dim=1)


class PSPDecoder(nn.Module):
    """Pyramid pooling on the deepest encoder features, a 1x1 conv-norm-ReLU fusion to
    ``out_channels``, then spatial dropout (``Dropout2d``, active in training only).

    Args:
        encoder_channels: channels of the encoder features (only the last is read).
        use_norm: normalisation of the conv-norm-ReLU layers (see ``segcore.nn.make_norm``).
        out_channels: channels of the decoder output.
        dropout: ``Dropout2d`` probability, in [0, 1).

    Shapes: the deepest feature ``(N, encoder_channels[-1], h, w)`` ->
    ``(N, out_channels, h, w)``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        use_norm: NormOption = "batchnorm",
        out_channels: int = 512,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.psp = PSPModule(encoder_channels[-1], sizes=POOL_SIZES, use_norm=use_norm)
        # SMP sizes this convolution as 2 * encoder_channels[-1], which is what the pyramid
        # gives when the channels are divisible by 4; the pyramid's own count also fits others.
        self.conv = Conv2dReLU(self.psp.out_channels, out_channels, kernel_size=1,
                               use_norm=use_norm)
        self.dropout = nn.Dropout2d(p=dropout)
        self.out_channels = out_channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.psp(features[-1])
        x = self.conv(x)
        return self.dropout(x)
