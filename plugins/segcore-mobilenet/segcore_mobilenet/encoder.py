"""MobileNetV2 encoder with torchvision's module names and math (no torchvision needed).

The module tree is torchvision's ``MobileNetV2.features`` without ``classifier``: ``features.0``
is the stem (conv-BN-ReLU6, stride 2), ``features.1`` to ``features.17`` are inverted residual
blocks (``conv`` = [1x1 expansion conv-BN-ReLU6,] 3x3 depthwise conv-BN-ReLU6, 1x1 projection
conv, BN), ``features.18`` the final 1x1 conv-BN-ReLU6 to 1280 channels. State dicts of SMP's
``MobileNetV2Encoder`` load with ``strict=True``; torchvision classifier files load once
``remap_state_dict`` has dropped their ``classifier.*`` keys.

Example::

    encoder = MobileNetV2Encoder()
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 16, 24, 32, 96, 1280]; sizes 64, 32, 16, 8, 4, 2
"""

from __future__ import annotations

import torch
from torch import nn

from segcore.nn import SequentialTapsEncoder, initialize_like_torchvision

__all__ = ["ConvBNReLU6", "InvertedResidual", "MobileNetV2Encoder", "build_encoder"]

#: (expansion ratio, output channels, blocks, stride of the first block) for width 1.0.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
#: Indexes in ``features`` of the maps returned at reductions 2, 4, 8, 16 and 32.
OUTPUT_INDEXES = (1, 3, 6, 13, 18)


class ConvBNReLU6(nn.Sequential):
    """Convolution (no bias, "same" padding), batch norm, ReLU6: children ``0``, ``1``, ``2``.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (unless ``expand_ratio`` is 1), 3x3 depthwise (carries
    the stride), linear 1x1 projection; a residual connection when shapes allow.

    ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Encoder(SequentialTapsEncoder):
    """MobileNetV2 (width 1.0) feature extractor following the segcore encoder contract.

    Args:
        depth: number of reductions returned, 1-5; blocks beyond it are kept (so weights
            always fit) but not run.

    ``forward(x)`` with ``x`` of shape ``(N, in_channels, H, W)`` returns ``depth + 1`` maps:
    ``x``, then ``features.1`` (1/2, 16 channels), ``features.3`` (1/4, 24), ``features.6``
    (1/8, 32), ``features.13`` (1/16, 96) and ``features.18`` (1/32, 1280). Dilation
    (``output_stride`` 16 or 8) replaces the strides of ``features.7-13`` and ``features.14-18``.
    """

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        layers: list[nn.Module] = [ConvBNReLU6(3, STEM_CHANNELS, stride=2)]
        channels = STEM_CHANNELS
        for expand_ratio, out_channels, blocks, stride in INVERTED_RESIDUAL_SETTING:
            for i in range(blocks):
                layers.append(InvertedResidual(channels, out_channels, stride if i == 0 else 1,
                                               expand_ratio))
                channels = out_channels
        layers.append(ConvBNReLU6(channels, LAST_CHANNELS, kernel_size=1))
        self.features = nn.Sequential(*layers)
        widths = [m.conv[-1].num_features if isinstance(m, InvertedResidual) else m[1].num_features
                  for m in layers]
        self._out_channels = (3, *(widths[i] for i in OUTPUT_INDEXES))
        self.set_feature_indexes(OUTPUT_INDEXES)
        # torchvision's initialisation: He (fan_out) for convolutions, BN as identity.
        initialize_like_torchvision(self)

    def get_stages(self) -> dict[int, list[nn.Module]]:
        blocks = list(self.features)
        return {16: blocks[7:14], 32: blocks[14:]}

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``classifier.1.*``) of torchvision classification files."""
        return {k: v for k, v in state_dict.items() if not k.startswith("classifier.")}


def build_encoder(name: str, depth: int = 5) -> MobileNetV2Encoder:
    """The factory of the spec: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards.

    Example::

        encoder = build_encoder("mobilenet_v2", depth=4)
    """
    return MobileNetV2Encoder(depth=depth)
