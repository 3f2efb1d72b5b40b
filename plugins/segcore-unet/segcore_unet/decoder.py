"""The Unet decoder: upsample, concatenate the encoder skip, two conv-norm-ReLU blocks.

The module tree (``center``, ``blocks.<i>.conv1/attention1/conv2/attention2``) is SMP's, so an
SMP Unet checkpoint loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.nn import (
    Attention,
    Conv2dReLU,
    DoubleConv2dReLU,
    NormOption,
    skip_decoder_block_channels,
)


class UnetDecoderBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, attention, conv, conv, attention.

    Args:
        in_channels: channels of the incoming (deeper) feature map.
        skip_channels: channels of the encoder skip (0 for the last block, which has none).
        out_channels: channels of the block's output.
        use_norm: normalisation of both convolutions (see ``segcore.nn.Conv2dReLU``).
        attention_type: ``None`` or ``"scse"``.
        interpolation_mode: ``F.interpolate`` mode used to upsample.

    Shapes: ``x`` ``(N, in_channels, h, w)``, skip ``(N, skip_channels, H, W)`` ->
    ``(N, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        use_norm: NormOption = "batchnorm",
        attention_type: str | None = None,
        interpolation_mode: str = "nearest",
    ) -> None:
        super().__init__()
        self.interpolation_mode = interpolation_mode
        fused_channels = in_channels + skip_channels
        self.conv1 = Conv2dReLU(fused_channels, out_channels, 3, padding=1, use_norm=use_norm)
        self.attention1 = Attention(attention_type, in_channels=fused_channels)
        if skip_channels == 0:
            # Without a skip there is no fusion, so attention1 is never applied (as in SMP). It
            # is kept so SMP checkpoints load, and frozen so no trainable parameter goes unused
            # (DistributedDataParallel would otherwise complain).
            self.attention1.requires_grad_(False)
        self.conv2 = Conv2dReLU(out_channels, out_channels, 3, padding=1, use_norm=use_norm)
        self.attention2 = Attention(attention_type, in_channels=out_channels)

    def forward(
        self,
        x: torch.Tensor,
        height: int,
        width: int,
        skip: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = F.interpolate(x, size=(height, width), mode=self.interpolation_mode)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
            x = self.attention1(x)
        x = self.conv1(x)
        x = self.conv2(x)
        return self.attention2(x)


class UnetCenterBlock(DoubleConv2dReLU):
    """Two conv-norm-ReLU layers on the deepest features (children ``0`` and ``1``).

    Used for VGG encoders, whose deepest features come straight from a pooling layer.
    """


class UnetDecoder(nn.Module):
    """The Unet decoder: one block per encoder stage, deepest first.

    Args:
        encoder_channels: ``encoder.out_channels`` (``depth + 1`` values, the input first).
        decoder_channels: output channels of each block, deepest first (``depth`` values).
        use_norm: normalisation of the convolutions.
        attention_type: ``None`` or ``"scse"``.
        add_center_block: put a ``UnetCenterBlock`` on the deepest features.
        interpolation_mode: upsampling mode of the blocks.

    ``forward(features)`` takes the encoder's ``depth + 1`` maps and returns
    ``(N, decoder_channels[-1], H, W)`` at the input's size ``H, W``, for any input size.

    Example::

        decoder = UnetDecoder((3, 8, 16, 24), decoder_channels=(32, 16, 8))
        features = [torch.rand(1, 3, 63, 65), torch.rand(1, 8, 32, 33),
                    torch.rand(1, 16, 16, 17), torch.rand(1, 24, 8, 9)]
        decoder(features).shape   # (1, 8, 63, 65)
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        use_norm: NormOption = "batchnorm",
        attention_type: str | None = None,
        add_center_block: bool = False,
        interpolation_mode: str = "nearest",
    ) -> None:
        super().__init__()
        block_channels = skip_decoder_block_channels(encoder_channels, decoder_channels)
        head_channels = encoder_channels[-1]
        self.center: nn.Module = (
            UnetCenterBlock(head_channels, head_channels, use_norm=use_norm)
            if add_center_block
            else nn.Identity()
        )
        self.blocks = nn.ModuleList(
            UnetDecoderBlock(
                block_in, block_skip, block_out, use_norm=use_norm,
                attention_type=attention_type, interpolation_mode=interpolation_mode,
            )
            for block_in, block_skip, block_out in block_channels
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # Each block upsamples to the size of the next shallower map, so odd sizes round-trip.
        stages = features[1:][::-1]  # deepest first, without the input
        x = self.center(stages[0])
        for index, block in enumerate(self.blocks):
            target = features[len(features) - 2 - index]
            skip = stages[index + 1] if index + 1 < len(stages) else None
            x = block(x, target.shape[-2], target.shape[-1], skip)
        return x
