"""The Linknet decoder: per stage, 1x1 reduce, transposed-conv x2, 1x1 expand, add the skip.

The module tree (``blocks.<i>.block.<0|1|2>``, each a conv/norm/ReLU sequence) is SMP's, so an
SMP Linknet checkpoint loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segcore.errors import EncoderCapabilityError
from segcore.nn import Conv2dReLU, NormOption, make_norm

#: output channels of the last decoder block (the segmentation head's input), as in SMP
PREFINAL_CHANNELS = 32


class TransposeX2(nn.Sequential):
    """Transposed convolution (kernel 4, stride 2, padding 1) -> norm -> ReLU.

    Children ``0`` (the ``ConvTranspose2d``, always with a bias, as in SMP), ``1`` (norm),
    ``2`` (ReLU). Input ``(N, in_channels, h, w)``, output ``(N, out_channels, 2h, 2w)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, use_norm: NormOption = "batchnorm"
    ) -> None:
        upsample = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2,
                                      padding=1)
        super().__init__(upsample, make_norm(use_norm, out_channels), nn.ReLU(inplace=True))


class LinknetDecoderBlock(nn.Module):
    """One Linknet block: 1x1 conv to ``in_channels // 4``, transposed conv x2, 1x1 conv.

    The three layers sit in ``block`` (children ``0``, ``1``, ``2``); the skip, when given, is
    added to the result.

    Args:
        in_channels: channels of the incoming (deeper) feature map; at least 4.
        out_channels: channels of the block's output (those of the skip it is added to).
        use_norm: normalisation of the three layers (see ``segcore.nn.Conv2dReLU``).

    Shapes: ``x`` ``(N, in_channels, h, w)`` (+ skip ``(N, out_channels, 2h, 2w)``) ->
    ``(N, out_channels, 2h, 2w)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, use_norm: NormOption = "batchnorm"
    ) -> None:
        super().__init__()
        reduced = in_channels // 4
        self.block = nn.Sequential(
            Conv2dReLU(in_channels, reduced, kernel_size=1, use_norm=use_norm),
            TransposeX2(reduced, reduced, use_norm=use_norm),
            Conv2dReLU(reduced, out_channels, kernel_size=1, use_norm=use_norm),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.block(x)
        if skip is not None:
            x = x + skip
        return x


class LinknetDecoder(nn.Module):
    """The Linknet decoder: one block per encoder stage, deepest first.

    Block ``i`` maps the channels of encoder stage ``depth - i`` to those of the next shallower
    stage (its skip) and the last block, which has no skip, to ``prefinal_channels``. A stage
    with 0 channels (the missing reduction-2 level of transformer-style encoders) is not added
    and its block keeps the channel count of the one before, as in SMP.

    Args:
        encoder_channels: ``encoder.out_channels`` (``depth + 1`` values, the input first).
        prefinal_channels: output channels of the last block.
        use_norm: normalisation of every layer.

    ``forward(features)`` takes the encoder's ``depth + 1`` maps and returns
    ``(N, prefinal_channels, H, W)`` at the input's size, for inputs whose height and width
    are multiples of ``2 ** depth``.

    Example::

        decoder = LinknetDecoder((3, 8, 16, 24))
        features = [torch.rand(1, 3, 32, 32), torch.rand(1, 8, 16, 16),
                    torch.rand(1, 16, 8, 8), torch.rand(1, 24, 4, 4)]
        decoder(features).shape   # (1, 32, 32, 32)
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        prefinal_channels: int = PREFINAL_CHANNELS,
        use_norm: NormOption = "batchnorm",
    ) -> None:
        super().__init__()
        # Deepest first, without the input itself (the decoder never reads it).
        stage_channels = [int(c) for c in encoder_channels[1:]][::-1]
        channels = [*stage_channels, prefinal_channels]
        for index in range(1, len(channels) - 1):
            if channels[index] == 0:  # a placeholder level: nothing to add, keep the width
                channels[index] = channels[index - 1]
        too_narrow = [c for c in channels[:-1] if c < 4]
        if too_narrow:
            raise EncoderCapabilityError(
                f"the Linknet decoder reduces each encoder stage to a quarter of its channels, "
                f"so every stage needs at least 4 channels; this encoder has stages with "
                f"{too_narrow} (its out_channels: {tuple(encoder_channels)})"
            )
        self.blocks = nn.ModuleList(
            LinknetDecoderBlock(channels[i], channels[i + 1], use_norm=use_norm)
            for i in range(len(stage_channels))
        )
        # Whether block i adds a skip: the next shallower stage exists and is not a placeholder.
        self._adds_skip = tuple(
            i + 1 < len(stage_channels) and stage_channels[i + 1] > 0
            for i in range(len(stage_channels))
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        stages = features[1:][::-1]
        x = stages[0]
        for index, block in enumerate(self.blocks):
            x = block(x, stages[index + 1] if self._adds_skip[index] else None)
        return x
