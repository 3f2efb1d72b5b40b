"""Inception-v4 encoder with SMP's module names and padding.

The module tree is SMP's (Cadene's ``pretrainedmodels``) ``InceptionV4`` without its
classifier: ``features.0`` .. ``features.21`` (stem convolutions, ``Mixed_3a/4a/5a``, 4 x
``Inception_A``, ``Reduction_A``, 7 x ``Inception_B``, ``Reduction_B``, 3 x ``Inception_C``);
every unit is ``conv`` + ``bn`` (eps 1e-3) + ReLU. As in SMP, every 3x3 convolution and max
pooling is padded by 1, so SMP state dicts load with ``strict=True`` and give the same maps.

Example::

    encoder = InceptionV4Encoder()
    features = encoder(torch.rand(2, 3, 64, 96))
    [f.shape[1] for f in features]    # [3, 64, 192, 384, 1024, 1536]
    [f.shape[-1] for f in features]   # [96, 48, 24, 12, 6, 3]
"""

from __future__ import annotations

import torch
from torch import nn

from segcore.encoder import EncoderBase
from segcore_inception._layers import ConvBNReLU, avg_pool, max_pool

__all__ = ["InceptionV4Encoder", "build_inceptionv4"]

#: Index in ``features`` of the unit whose output is the map at reduction 2, 4, 8, 16, 32.
#: (As in SMP, reduction 8 is read after the third ``Inception_A`` and reduction 16 after the
#: fourth ``Inception_B``.)
FEATURE_INDICES = (2, 4, 8, 14, 21)
OUT_CHANNELS = (3, 64, 192, 384, 1024, 1536)


class Mixed3a(nn.Module):
    """Stride-2 max pooling and 3x3 convolution side by side: 64 -> 64 + 96 = 160 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.maxpool = max_pool()
        self.conv = ConvBNReLU(64, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.maxpool(x), self.conv(x)), 1)


class Mixed4a(nn.Module):
    """Two branches (1x1-3x3 and 1x1-1x7-7x1-3x3): 160 -> 96 + 96 = 192 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(ConvBNReLU(160, 64, 1), ConvBNReLU(64, 96, 3))
        self.branch1 = nn.Sequential(
            ConvBNReLU(160, 64, 1), ConvBNReLU(64, 64, (1, 7)), ConvBNReLU(64, 64, (7, 1)),
            ConvBNReLU(64, 96, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x)), 1)


class Mixed5a(nn.Module):
    """Stride-2 3x3 convolution and max pooling side by side: 192 -> 192 + 192 = 384."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = ConvBNReLU(192, 192, 3, stride=2)
        self.maxpool = max_pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.conv(x), self.maxpool(x)), 1)


class InceptionA(nn.Module):
    """Inception-A (35x35 grid of the paper): 384 -> 96 x 4 = 384 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBNReLU(384, 96, 1)
        self.branch1 = nn.Sequential(ConvBNReLU(384, 64, 1), ConvBNReLU(64, 96, 3))
        self.branch2 = nn.Sequential(
            ConvBNReLU(384, 64, 1), ConvBNReLU(64, 96, 3), ConvBNReLU(96, 96, 3),
        )
        self.branch3 = nn.Sequential(avg_pool(), ConvBNReLU(384, 96, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class ReductionA(nn.Module):
    """Reduction-A (stride 2): 384 -> 384 + 256 + 384 = 1024 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBNReLU(384, 384, 3, stride=2)
        self.branch1 = nn.Sequential(
            ConvBNReLU(384, 192, 1), ConvBNReLU(192, 224, 3), ConvBNReLU(224, 256, 3, stride=2),
        )
        self.branch2 = max_pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionB(nn.Module):
    """Inception-B (17x17 grid, factorised 7x7): 1024 -> 384 + 256 + 256 + 128 = 1024."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBNReLU(1024, 384, 1)
        self.branch1 = nn.Sequential(
            ConvBNReLU(1024, 192, 1), ConvBNReLU(192, 224, (1, 7)), ConvBNReLU(224, 256, (7, 1)),
        )
        self.branch2 = nn.Sequential(
            ConvBNReLU(1024, 192, 1), ConvBNReLU(192, 192, (7, 1)), ConvBNReLU(192, 224, (1, 7)),
            ConvBNReLU(224, 224, (7, 1)), ConvBNReLU(224, 256, (1, 7)),
        )
        self.branch3 = nn.Sequential(avg_pool(), ConvBNReLU(1024, 128, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class ReductionB(nn.Module):
    """Reduction-B (stride 2): 1024 -> 192 + 320 + 1024 = 1536 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(ConvBNReLU(1024, 192, 1), ConvBNReLU(192, 192, 3, stride=2))
        self.branch1 = nn.Sequential(
            ConvBNReLU(1024, 256, 1), ConvBNReLU(256, 256, (1, 7)), ConvBNReLU(256, 320, (7, 1)),
            ConvBNReLU(320, 320, 3, stride=2),
        )
        self.branch2 = max_pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionC(nn.Module):
    """Inception-C (8x8 grid, split 1x3 / 3x1 outputs): 1536 -> 256 x 6 = 1536 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBNReLU(1536, 256, 1)
        self.branch1_0 = ConvBNReLU(1536, 384, 1)
        self.branch1_1a = ConvBNReLU(384, 256, (1, 3))
        self.branch1_1b = ConvBNReLU(384, 256, (3, 1))
        self.branch2_0 = ConvBNReLU(1536, 384, 1)
        self.branch2_1 = ConvBNReLU(384, 448, (3, 1))
        self.branch2_2 = ConvBNReLU(448, 512, (1, 3))
        self.branch2_3a = ConvBNReLU(512, 256, (1, 3))
        self.branch2_3b = ConvBNReLU(512, 256, (3, 1))
        self.branch3 = nn.Sequential(avg_pool(), ConvBNReLU(1536, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.branch1_0(x)
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        return torch.cat((
            self.branch0(x),
            self.branch1_1a(x1), self.branch1_1b(x1),
            self.branch2_3a(x2), self.branch2_3b(x2),
            self.branch3(x),
        ), 1)


class InceptionV4Encoder(EncoderBase):
    """Inception-v4 feature extractor following the segcore encoder contract.

    Args:
        depth: number of reductions returned, 1-5 (all units are kept so weights always fit;
            the units past the last map returned are not run).

    ``forward(x)``: ``(N, C, H, W)`` -> ``depth + 1`` maps: ``x``, then the outputs of
    ``features[i]`` for ``i`` in ``FEATURE_INDICES`` (channels ``OUT_CHANNELS``, sizes
    ``ceil(H / 2**k)``). No dilation: the network downsamples with pooling branches.
    """

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        self._out_channels = OUT_CHANNELS
        self._feature_indices = list(FEATURE_INDICES)
        self.features = nn.Sequential(
            ConvBNReLU(3, 32, 3, stride=2),
            ConvBNReLU(32, 32, 3),
            ConvBNReLU(32, 64, 3),
            Mixed3a(),
            Mixed4a(),
            Mixed5a(),
            *(InceptionA() for _ in range(4)),
            ReductionA(),
            *(InceptionB() for _ in range(7)),
            ReductionB(),
            *(InceptionC() for _ in range(3)),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        last = self._feature_indices[self._depth - 1]
        # Iterating the Sequential itself (not a slice of it) keeps TorchScript happy; the
        # index tests are on Python ints, so torch.compile unrolls them.
        for index, unit in enumerate(self.features):
            if index <= last:
                x = unit(x)
                if index in self._feature_indices:
                    features.append(x)
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``last_linear.*``) of classification files."""
        return {k: v for k, v in state_dict.items() if not k.startswith("last_linear.")}


def build_inceptionv4(name: str = "inceptionv4", depth: int = 5) -> InceptionV4Encoder:
    """The factory of the spec: the encoder for 3 input channels, output stride 32.

    The core loads weights and adapts the input channels afterwards.

    Example::

        encoder = build_inceptionv4(depth=4)   # maps at reductions 1, 2, 4, 8, 16
    """
    return InceptionV4Encoder(depth=depth)
