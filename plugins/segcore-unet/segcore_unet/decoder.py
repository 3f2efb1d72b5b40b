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
    DoubleConv2dReLU,
    NormOption,
    SkipAttentionBlock,
    center_block_or_identity,
    skip_decoder_block_channels,
)


class UnetDecoderBlock(SkipAttentionBlock):
    """Upsample to the skip's size, concatenate the skip, attention, conv, conv, attention.

    The arguments and layers are ``segcore.nn.SkipAttentionBlock``'s (``skip_channels`` is 0
    for the last block, which has no skip). ``forward(x, height, width, skip)``: ``x``
    ``(N, in_channels, h, w)``, skip ``(N, skip_channels, height, width)`` ->
    ``(N, out_channels, height, width)``.
    """

    def forward(
        self,
        x: torch.Tensor,
        height: int,
        width: int,
        skip: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = F.interpolate(x, size=(height, width), mode=self.interpolation_mode)
        return self.fuse(x, skip)


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
        self.center = center_block_or_identity(
            add_center_block, encoder_channels[-1], use_norm, UnetCenterBlock
        )
        self.blocks = nn.ModuleList(
            UnetDecoderBlock(
                block_in, block_skip, block_out, use_norm=use_norm,
                attention_type=attention_type, interpolation_mode=interpolation_mode,
            )
            for block_in, block_skip, block_out in block_channels
        )
        for block, (_, block_skip, _) in zip(self.blocks, block_channels):
            if block_skip == 0:
                block.freeze_unfused_attention()

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # Each block upsamples to the size of the next shallower map, so odd sizes round-trip.
        stages = features[1:][::-1]  # deepest first, without the input
        x = self.center(stages[0])
        for index, block in enumerate(self.blocks):
            target = features[len(features) - 2 - index]
            skip = stages[index + 1] if index + 1 < len(stages) else None
            x = block(x, target.shape[-2], target.shape[-1], skip)
        return x
