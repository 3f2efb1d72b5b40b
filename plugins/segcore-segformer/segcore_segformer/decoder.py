"""The Segformer decoder: per-stage linear projections, resized to 1/4 scale, fused by a 1x1 conv.

The module tree (``mlp_stage.<i>.linear``, ``fuse_stage.0/1/2``) is SMP's, so an SMP Segformer
checkpoint loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.errors import InvalidOptionError
from segcore.nn import Conv2dReLU, check_pyramid_decoder_inputs

#: the decoder's output is at this reduction of the input, whatever the encoder depth
OUTPUT_REDUCTION = 4


class MLP(nn.Module):
    """The same linear layer applied to the channel vector of every pixel (a 1x1 convolution
    written as ``nn.Linear``, child ``linear``).

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        pixels = x.flatten(2).transpose(1, 2)  # (N, h * w, C)
        projected = self.linear(pixels)
        return projected.transpose(1, 2).reshape(batch, -1, height, width)


def used_levels(encoder_channels: Sequence[int]) -> list[int]:
    """The encoder levels the decoder reads: every stage (not the input) that has channels.

    Transformer-style encoders have an empty 0-channel map at reduction 2; it is skipped.
    """
    return [level for level in range(1, len(encoder_channels)) if encoder_channels[level] > 0]


class SegformerDecoder(nn.Module):
    """All-MLP decoder: project each encoder stage, resize to 1/4 of the input, concat, fuse.

    Args:
        encoder_channels: the encoder's ``out_channels`` (the input first).
        encoder_depth: stages the encoder returns (3-5).
        segmentation_channels: channels of each projection and of the fused output.

    Shapes: features as the encoder returns them, the input ``(N, C, H, W)`` first ->
    ``(N, segmentation_channels, H // 4, W // 4)`` for every depth.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_depth: int = 5,
        segmentation_channels: int = 256,
    ) -> None:
        super().__init__()
        check_pyramid_decoder_inputs("Segformer", encoder_channels, encoder_depth)
        # deepest stage first, as the projections are concatenated in that order
        self._levels = tuple(reversed(used_levels(encoder_channels)))
        self._output_reduction = OUTPUT_REDUCTION  # an attribute: TorchScript reads no globals
        if not self._levels:
            raise InvalidOptionError(
                f"the Segformer decoder needs at least one encoder stage with channels, got "
                f"encoder_channels={tuple(encoder_channels)}"
            )
        self.out_channels = segmentation_channels
        self.mlp_stage = nn.ModuleList(
            MLP(encoder_channels[level], segmentation_channels) for level in self._levels
        )
        self.fuse_stage = Conv2dReLU(
            len(self._levels) * segmentation_channels,
            segmentation_channels,
            kernel_size=1,
            use_norm="batchnorm",
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        height, width = features[0].shape[-2:]
        size = (height // self._output_reduction, width // self._output_reduction)
        resized = [
            F.interpolate(mlp(features[level]), size=size, mode="bilinear", align_corners=False)
            for mlp, level in zip(self.mlp_stage, self._levels)
        ]
        return self.fuse_stage(torch.cat(resized, dim=1))
