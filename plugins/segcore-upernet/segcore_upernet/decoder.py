"""The UPerNet decoder: pyramid pooling on the deepest encoder features, a top-down feature
pyramid over the shallower ones, and a fusion of all levels at 1/4 of the input size.

The module tree (``feature_norms``, ``psp.blocks.<i>.{0,1}``, ``psp.out_conv``,
``fpn_lateral_blocks.<i>.conv_norm_relu``, ``fpn_conv_blocks.<i>``, ``fusion_block``) is
SMP's, so an SMP UPerNet checkpoint loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.nn import (
    Conv2dReLU,
    ExportableAdaptiveAvgPool2d,
    LayerNorm2d,
    NormOption,
    check_pyramid_decoder_inputs,
)

#: bin sizes of the pyramid pooling module (the paper's 1x1, 2x2, 3x3 and 6x6)
POOL_SIZES = (1, 2, 3, 6)
#: the first encoder feature the decoder reads: reduction 2**2 = 4 (the input and the
#: reduction-2 features are never used)
FIRST_LEVEL = 2
#: epsilon of the layer normalisation applied to each encoder feature the decoder reads
FEATURE_NORM_EPS = 1e-6


def _resize(x: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Bilinear resizing to ``size`` (height, width), ``align_corners=False``."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class PSPModule(nn.Module):
    """Pyramid pooling: for each bin size, average pooling to ``size x size`` bins and a 1x1
    conv-norm-ReLU to ``out_channels``, resized back bilinearly; the input and the levels are
    concatenated (input first) and fused by a 3x3 conv-BatchNorm-ReLU.

    The fusion always normalises with BatchNorm, whatever ``use_norm`` says (as SMP).

    Children: ``blocks`` (``Sequential(ExportableAdaptiveAvgPool2d, Conv2dReLU)`` per size),
    ``out_conv``.

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        sizes: Sequence[int] = POOL_SIZES,
        use_norm: NormOption = "batchnorm",
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                ExportableAdaptiveAvgPool2d(size),
                Conv2dReLU(in_channels, out_channels, kernel_size=1, use_norm=use_norm),
            )
            for size in sizes
        )
        self.out_conv = Conv2dReLU(
            in_channels + len(sizes) * out_channels, out_channels, kernel_size=3, padding=1,
            use_norm="batchnorm",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = [x]
        for block in self.blocks:
            levels.append(_resize(block(x), x.shape[-2:]))
        return self.out_conv(torch.cat(levels, dim=1))


class FPNLateralBlock(nn.Module):
    """One top-down step: a 1x1 conv-norm-ReLU projects the encoder (lateral) feature and the
    coarser pyramid level, resized bilinearly to its size, is added to it.

    Children: ``conv_norm_relu``.

    Shapes: state ``(N, out_channels, h', w')`` and lateral ``(N, lateral_channels, h, w)`` ->
    ``(N, out_channels, h, w)``.
    """

    def __init__(
        self, lateral_channels: int, out_channels: int, use_norm: NormOption = "batchnorm"
    ) -> None:
        super().__init__()
        self.conv_norm_relu = Conv2dReLU(lateral_channels, out_channels, kernel_size=1,
                                         use_norm=use_norm)

    def forward(self, state: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        lateral = self.conv_norm_relu(lateral)
        return _resize(state, lateral.shape[-2:]) + lateral


class UPerNetDecoder(nn.Module):
    """The UPerNet decoder.

    The encoder features from reduction 4 to the deepest (``encoder_depth - 1`` of them) are
    layer-normalised over their channels. The deepest goes through ``PSPModule``; each
    shallower one, from deep to shallow, is joined to the pyramid by an ``FPNLateralBlock``
    and refined by a 3x3 conv-norm-ReLU (the unrefined sum feeds the next step). The PSP
    output and the refined levels are resized to the reduction-4 size, concatenated (finest
    first) and fused by a 3x3 conv-norm-ReLU.

    Args:
        encoder_channels: channels of the encoder features, the input first
            (``encoder_depth + 1`` values); the first two are not read.
        encoder_depth: number of encoder stages, at least 3.
        decoder_channels: channels of every pyramid level and of the output.
        use_norm: normalisation of the conv-norm-ReLU layers (see ``segcore.nn.make_norm``);
            the PSP fusion (``psp.out_conv``) always uses BatchNorm.

    Shapes: features ``[(N, encoder_channels[i], H / 2**i, W / 2**i)]`` ->
    ``(N, decoder_channels, H / 4, W / 4)``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_depth: int = 5,
        decoder_channels: int = 256,
        use_norm: NormOption = "batchnorm",
    ) -> None:
        super().__init__()
        check_pyramid_decoder_inputs("UPerNet", encoder_channels, encoder_depth)
        self.first_level = FIRST_LEVEL
        channels = tuple(encoder_channels[FIRST_LEVEL:])  # reductions 4, 8, ... (finest first)
        self.feature_norms = nn.ModuleList(
            LayerNorm2d(count, eps=FEATURE_NORM_EPS) for count in channels
        )
        self.psp = PSPModule(channels[-1], decoder_channels, sizes=POOL_SIZES,
                             use_norm=use_norm)
        self.fpn_lateral_blocks = nn.ModuleList()
        self.fpn_conv_blocks = nn.ModuleList()
        for count in reversed(channels[:-1]):  # deep to shallow
            self.fpn_lateral_blocks.append(FPNLateralBlock(count, decoder_channels, use_norm))
            self.fpn_conv_blocks.append(
                Conv2dReLU(decoder_channels, decoder_channels, kernel_size=3, padding=1,
                           use_norm=use_norm)
            )
        self.fusion_block = Conv2dReLU(
            len(channels) * decoder_channels, decoder_channels, kernel_size=3, padding=1,
            use_norm=use_norm,
        )
        self.out_channels = decoder_channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # (loops over the module lists and plain indexing, which TorchScript compiles)
        levels: list[torch.Tensor] = []  # reductions 4, 8, ... (finest first)
        for index, norm in enumerate(self.feature_norms):
            levels.append(norm(features[self.first_level + index]))
        state = self.psp(levels[-1])
        pyramid = [state]  # deepest first
        for index, (lateral_block, conv_block) in enumerate(
            zip(self.fpn_lateral_blocks, self.fpn_conv_blocks)
        ):
            state = lateral_block(state, levels[len(levels) - 2 - index])
            pyramid.append(conv_block(state))
        finest = pyramid[-1]
        resized = [finest]
        for index in range(len(pyramid) - 2, -1, -1):
            resized.append(_resize(pyramid[index], finest.shape[-2:]))
        return self.fusion_block(torch.cat(resized, dim=1))
