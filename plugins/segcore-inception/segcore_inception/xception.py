"""Xception encoder with SMP's module names and padding.

The module tree is SMP's (Cadene's ``pretrainedmodels``) ``Xception`` without ``fc``:
``conv1, bn1, conv2, bn2`` (stem), ``block1`` .. ``block12`` (each ``rep`` — ReLU, separable
convolution, batch norm, repeated, then a stride-2 max pooling — plus ``skip``/``skipbn``
where the shape changes), ``conv3, bn3, conv4, bn4``. As in SMP, the two stem convolutions are
padded by 1, so SMP state dicts load with ``strict=True`` and give the same maps.

Example::

    encoder = XceptionEncoder()
    features = encoder(torch.rand(2, 3, 64, 96))
    [f.shape[1] for f in features]    # [3, 64, 128, 256, 728, 2048]
    [f.shape[-1] for f in features]   # [96, 48, 24, 12, 6, 3]
"""

from __future__ import annotations

import torch
from torch import nn

from segcore.encoder import EncoderBase

__all__ = ["Block", "SeparableConv2d", "XceptionEncoder", "build_xception"]

OUT_CHANNELS = (3, 64, 128, 256, 728, 2048)


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (``conv1``, padding 1) then pointwise 1x1 (``pointwise``), no bias.

    Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels,
                               bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """Xception block: ``rep(x) + skip(x)``.

    ``rep`` is ``reps`` x (ReLU, separable convolution, batch norm), then a 3x3 max pooling of
    stride ``stride`` (padding 1) when ``stride`` is 2. The channel change happens in the first
    unit (``grow_first``) or the last. ``start_with_relu=False`` drops the leading ReLU (first
    block, whose input is already rectified). ``skip`` is a strided 1x1 convolution + batch norm
    when the shape changes, else the identity. The first ReLU does not overwrite the input,
    which the skip still reads; the others work in place.

    Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True) -> None:
        super().__init__()
        if out_channels != in_channels or stride != 1:
            self.skip: nn.Module | None = nn.Conv2d(in_channels, out_channels, 1, stride=stride,
                                                    bias=False)
            self.skipbn: nn.Module | None = nn.BatchNorm2d(out_channels)
        else:
            self.skip = None
            self.skipbn = None
        widths = [in_channels] + [out_channels if grow_first else in_channels] * (reps - 1)
        widths.append(out_channels)
        layers: list[nn.Module] = []
        for index in range(reps):
            layers += [nn.ReLU(inplace=index > 0),
                       SeparableConv2d(widths[index], widths[index + 1]),
                       nn.BatchNorm2d(widths[index + 1])]
        if not start_with_relu:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rep(x)
        if self.skip is not None and self.skipbn is not None:
            return out.add_(self.skipbn(self.skip(x)))
        return out.add_(x)


class XceptionEncoder(EncoderBase):
    """Xception feature extractor following the segcore encoder contract.

    Args:
        depth: number of reductions returned, 1-5 (all modules are kept so weights always fit;
            those past the last map returned are not run).

    ``forward(x)``: ``(N, C, H, W)`` -> ``depth + 1`` maps of ``OUT_CHANNELS`` channels and
    sizes ``ceil(H / 2**k)``: ``x``, the stem (1/2), ``block1`` (1/4), ``block2`` (1/8),
    ``block3``-``block11`` (1/16), ``block12`` + ``conv3``/``conv4`` (1/32, ``bn4`` without
    ReLU, as in SMP). No dilation: the blocks downsample with max pooling.
    """

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        self._out_channels = OUT_CHANNELS
        self.conv1 = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        self.block4 = Block(728, 728, 3)
        self.block5 = Block(728, 728, 3)
        self.block6 = Block(728, 728, 3)
        self.block7 = Block(728, 728, 3)
        self.block8 = Block(728, 728, 3)
        self.block9 = Block(728, 728, 3)
        self.block10 = Block(728, 728, 3)
        self.block11 = Block(728, 728, 3)
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv4 = SeparableConv2d(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        if self._depth >= 1:
            x = self.relu1(self.bn1(self.conv1(x)))
            x = self.relu2(self.bn2(self.conv2(x)))
            features.append(x)
        if self._depth >= 2:
            x = self.block1(x)
            features.append(x)
        if self._depth >= 3:
            x = self.block2(x)
            features.append(x)
        if self._depth >= 4:
            x = self.block3(x)
            x = self.block4(x)
            x = self.block5(x)
            x = self.block6(x)
            x = self.block7(x)
            x = self.block8(x)
            x = self.block9(x)
            x = self.block10(x)
            x = self.block11(x)
            features.append(x)
        if self._depth >= 5:
            x = self.relu3(self.bn3(self.conv3(self.block12(x))))
            x = self.bn4(self.conv4(x))
            features.append(x)
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``fc.*``, or ``last_linear.*`` as pretrainedmodels
        renames it) of classification files."""
        return {k: v for k, v in state_dict.items()
                if not k.startswith(("fc.", "last_linear."))}


def build_xception(name: str = "xception", depth: int = 5) -> XceptionEncoder:
    """The factory of the spec: the encoder for 3 input channels, output stride 32.

    The core loads weights and adapts the input channels afterwards.

    Example::

        encoder = build_xception(depth=5)
    """
    return XceptionEncoder(depth=depth)
