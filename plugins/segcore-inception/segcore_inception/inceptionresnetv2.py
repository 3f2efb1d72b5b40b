"""Inception-ResNet-v2 encoder with SMP's module names and padding.

The module tree is SMP's (Cadene's ``pretrainedmodels``) ``InceptionResNetV2`` without
``avgpool_1a`` and ``last_linear``: stem ``conv2d_1a`` .. ``conv2d_4a`` with ``maxpool_3a/5a``,
``mixed_5b``, ``repeat`` (10 x Block35), ``mixed_6a``, ``repeat_1`` (20 x Block17),
``mixed_7a``, ``repeat_2`` (9 x Block8), ``block8`` (no ReLU), ``conv2d_7b``. As in SMP, every
3x3 convolution and max pooling is padded by 1, so SMP state dicts load with ``strict=True``
and give the same maps.

Example::

    encoder = InceptionResNetV2Encoder()
    features = encoder(torch.rand(2, 3, 64, 96))
    [f.shape[1] for f in features]    # [3, 64, 192, 320, 1088, 1536]
    [f.shape[-1] for f in features]   # [96, 48, 24, 12, 6, 3]
"""

from __future__ import annotations

import torch
from torch import nn

from segcore.encoder import EncoderBase
from segcore_inception._layers import ConvBNReLU, avg_pool, max_pool

__all__ = ["InceptionResNetV2Encoder", "build_inceptionresnetv2"]

OUT_CHANNELS = (3, 64, 192, 320, 1088, 1536)


class Mixed5b(nn.Module):
    """Four branches (1x1, 1x1-5x5, 1x1-3x3-3x3, pool-1x1): 192 -> 96 + 64 + 96 + 64 = 320."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBNReLU(192, 96, 1)
        self.branch1 = nn.Sequential(ConvBNReLU(192, 48, 1), ConvBNReLU(48, 64, 5))
        self.branch2 = nn.Sequential(
            ConvBNReLU(192, 64, 1), ConvBNReLU(64, 96, 3), ConvBNReLU(96, 96, 3),
        )
        self.branch3 = nn.Sequential(avg_pool(), ConvBNReLU(192, 64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


def _residual(x: torch.Tensor, branches: torch.Tensor, scale: float, relu: bool) -> torch.Tensor:
    # x + scale * branches in one kernel (torch.add's alpha), then ReLU in place: the sum is a
    # fresh tensor that autograd does not need.
    out = torch.add(x, branches, alpha=scale)
    return out.relu_() if relu else out


class Block35(nn.Module):
    """Inception-ResNet-A: ``relu(x + scale * conv2d(branches(x)))``, 320 channels."""

    def __init__(self, scale: float = 0.17) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = ConvBNReLU(320, 32, 1)
        self.branch1 = nn.Sequential(ConvBNReLU(320, 32, 1), ConvBNReLU(32, 32, 3))
        self.branch2 = nn.Sequential(
            ConvBNReLU(320, 32, 1), ConvBNReLU(32, 48, 3), ConvBNReLU(48, 64, 3),
        )
        self.conv2d = nn.Conv2d(128, 320, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1))
        return _residual(x, out, self.scale, True)


class Mixed6a(nn.Module):
    """Reduction-A (stride 2): 320 -> 384 + 384 + 320 = 1088 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBNReLU(320, 384, 3, stride=2)
        self.branch1 = nn.Sequential(
            ConvBNReLU(320, 256, 1), ConvBNReLU(256, 256, 3), ConvBNReLU(256, 384, 3, stride=2),
        )
        self.branch2 = max_pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Block17(nn.Module):
    """Inception-ResNet-B (factorised 7x7): ``relu(x + scale * conv2d(...))``, 1088 channels."""

    def __init__(self, scale: float = 0.10) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = ConvBNReLU(1088, 192, 1)
        self.branch1 = nn.Sequential(
            ConvBNReLU(1088, 128, 1), ConvBNReLU(128, 160, (1, 7)), ConvBNReLU(160, 192, (7, 1)),
        )
        self.conv2d = nn.Conv2d(384, 1088, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1))
        return _residual(x, out, self.scale, True)


class Mixed7a(nn.Module):
    """Reduction-B (stride 2): 1088 -> 384 + 288 + 320 + 1088 = 2080 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(ConvBNReLU(1088, 256, 1), ConvBNReLU(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(ConvBNReLU(1088, 256, 1), ConvBNReLU(256, 288, 3, stride=2))
        self.branch2 = nn.Sequential(
            ConvBNReLU(1088, 256, 1), ConvBNReLU(256, 288, 3), ConvBNReLU(288, 320, 3, stride=2),
        )
        self.branch3 = max_pool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class Block8(nn.Module):
    """Inception-ResNet-C (1x3 / 3x1): ``x + scale * conv2d(...)``, ReLU unless ``relu=False``.

    2080 channels in and out.
    """

    def __init__(self, scale: float = 0.20, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.apply_relu = relu
        self.branch0 = ConvBNReLU(2080, 192, 1)
        self.branch1 = nn.Sequential(
            ConvBNReLU(2080, 192, 1), ConvBNReLU(192, 224, (1, 3)), ConvBNReLU(224, 256, (3, 1)),
        )
        self.conv2d = nn.Conv2d(448, 2080, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1))
        return _residual(x, out, self.scale, self.apply_relu)


class InceptionResNetV2Encoder(EncoderBase):
    """Inception-ResNet-v2 feature extractor following the segcore encoder contract.

    Args:
        depth: number of reductions returned, 1-5 (all modules are kept so weights always fit;
            those past the last map returned are not run).

    ``forward(x)``: ``(N, C, H, W)`` -> ``depth + 1`` maps of ``OUT_CHANNELS`` channels and
    sizes ``ceil(H / 2**k)``: ``x``, ``conv2d_2b`` (1/2), ``conv2d_4a`` (1/4), ``repeat``
    (1/8), ``repeat_1`` (1/16), ``conv2d_7b`` (1/32). No dilation: the network downsamples
    with pooling branches.
    """

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        self._out_channels = OUT_CHANNELS
        self.conv2d_1a = ConvBNReLU(3, 32, 3, stride=2)
        self.conv2d_2a = ConvBNReLU(32, 32, 3)
        self.conv2d_2b = ConvBNReLU(32, 64, 3)
        self.maxpool_3a = max_pool()
        self.conv2d_3b = ConvBNReLU(64, 80, 1)
        self.conv2d_4a = ConvBNReLU(80, 192, 3)
        self.maxpool_5a = max_pool()
        self.mixed_5b = Mixed5b()
        self.repeat = nn.Sequential(*(Block35(scale=0.17) for _ in range(10)))
        self.mixed_6a = Mixed6a()
        self.repeat_1 = nn.Sequential(*(Block17(scale=0.10) for _ in range(20)))
        self.mixed_7a = Mixed7a()
        self.repeat_2 = nn.Sequential(*(Block8(scale=0.20) for _ in range(9)))
        self.block8 = Block8(scale=1.0, relu=False)
        self.conv2d_7b = ConvBNReLU(2080, 1536, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        if self._depth >= 1:
            x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
            features.append(x)
        if self._depth >= 2:
            x = self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x)))
            features.append(x)
        if self._depth >= 3:
            x = self.repeat(self.mixed_5b(self.maxpool_5a(x)))
            features.append(x)
        if self._depth >= 4:
            x = self.repeat_1(self.mixed_6a(x))
            features.append(x)
        if self._depth >= 5:
            x = self.conv2d_7b(self.block8(self.repeat_2(self.mixed_7a(x))))
            features.append(x)
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``last_linear.*``) of classification files."""
        return {k: v for k, v in state_dict.items() if not k.startswith("last_linear.")}


def build_inceptionresnetv2(name: str = "inceptionresnetv2",
                            depth: int = 5) -> InceptionResNetV2Encoder:
    """The factory of the spec: the encoder for 3 input channels, output stride 32.

    The core loads weights and adapts the input channels afterwards.

    Example::

        encoder = build_inceptionresnetv2(depth=3)   # maps at reductions 1, 2, 4, 8
    """
    return InceptionResNetV2Encoder(depth=depth)
