"""The ExampleFPN decoder: lateral 1x1 convs, top-down nearest upsampling and sum, a 3x3 conv."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.nn import Conv2dReLU


class ExampleFPNDecoder(nn.Module):
    """A feature pyramid on the encoder stages, returned at the input's size.

    Args:
        encoder_channels: ``encoder.out_channels``: ``depth + 1`` values, the input first.
        pyramid_channels: channels of every pyramid level.
        levels: how many of the deepest stages are used; ``None``: all of them.
        dropout: probability of the ``Dropout2d`` applied to the output.

    ``forward(features)`` takes the encoder's ``depth + 1`` maps (the input, then reductions
    2, 4, ...) and returns ``(N, pyramid_channels, H, W)`` at the input's size, for any size.

    Example::

        decoder = ExampleFPNDecoder((3, 8, 16, 24), pyramid_channels=32)
        features = [torch.rand(1, 3, 63, 65), torch.rand(1, 8, 32, 33),
                    torch.rand(1, 16, 16, 17), torch.rand(1, 24, 8, 9)]
        decoder(features).shape   # (1, 32, 63, 65)
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        pyramid_channels: int = 64,
        levels: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        # Indices (into the feature list) of the stages that feed the pyramid, shallowest
        # first. Index 0 is the input image itself, never a pyramid level; a level an encoder
        # does not produce (0 channels, e.g. reduction 2 of a transformer) is skipped.
        stages = [i for i in range(1, len(encoder_channels)) if encoder_channels[i] > 0]
        self.stages = stages[-levels:] if levels else stages
        self.lateral = nn.ModuleList(
            nn.Conv2d(encoder_channels[i], pyramid_channels, kernel_size=1) for i in self.stages
        )
        self.smooth = Conv2dReLU(pyramid_channels, pyramid_channels, 3, padding=1)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x: torch.Tensor | None = None
        for index, lateral in zip(reversed(self.stages), reversed(self.lateral)):
            feature = features[index]
            level = lateral(feature)
            if x is not None:
                # size=, not scale_factor=2: odd sizes and dilated (same-size) stages work
                level = level + F.interpolate(x, size=feature.shape[-2:], mode="nearest")
            x = level
        assert x is not None
        x = self.dropout(self.smooth(x))
        return F.interpolate(x, size=features[0].shape[-2:], mode="bilinear",
                             align_corners=False)
