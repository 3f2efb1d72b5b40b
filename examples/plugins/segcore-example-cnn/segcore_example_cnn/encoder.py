"""The encoder module and its factory: five stride-2 stages, following segcore's encoder
contract (``segcore.encoder``)."""

from __future__ import annotations

import torch
from torch import nn

from segcore.encoder import EncoderBase


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """A stride-2 3x3 conv (padding 1: ``ceil(size / 2)``), then a 3x3 conv, each + BN + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class GuideCNNEncoder(EncoderBase):
    """A small VGG-like CNN: ``width``, 2, 4, 8 and 16 times ``width`` channels.

    Args:
        width: channels of the first stage; each stage doubles them.
        depth: number of stages used (1-5).

    Shapes: input ``(N, 3, H, W)`` -> ``[x, reduction 2, 4, 8, 16, 32][: depth + 1]``, each
    stride-2 stage giving ``ceil(size / 2)``. ``EncoderBase`` provides ``out_channels``,
    ``output_stride``, ``set_in_channels`` (other input channel counts) and ``make_dilated``
    (driven by ``get_stages``); segcore calls the last two, not the factory.
    """

    def __init__(self, width: int = 16, depth: int = 5) -> None:
        super().__init__(depth=depth)
        channels = [3] + [width * 2**i for i in range(5)]
        self._out_channels = tuple(channels)  # the channels at depth 5, the input first
        self.stages = nn.ModuleList(_stage(channels[i], channels[i + 1]) for i in range(5))

    def get_stages(self) -> dict[int, list[nn.Module]]:
        # the modules that run at reductions 16 and 32: what make_dilated turns into dilation
        return {16: [self.stages[3]], 32: [self.stages[4]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        for stage in self.stages[: self.depth]:  # only the stages the depth asks for
            x = stage(x)
            features.append(x)
        return features


def build_encoder(name: str, depth: int, width: int = 16) -> GuideCNNEncoder:
    """The factory of the EncoderSpec: it only constructs (3 input channels, output stride 32,
    random weights). segcore then loads weights, adapts the input channels and dilates."""
    return GuideCNNEncoder(width=width, depth=depth)
