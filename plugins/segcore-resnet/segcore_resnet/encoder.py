"""ResNet / ResNeXt encoders with torchvision's module names and math (no torchvision needed).

The module tree is torchvision's ``ResNet`` without ``avgpool``/``fc``: ``conv1, bn1, relu,
maxpool, layer1..layer4``; blocks have ``conv1, bn1, conv2, bn2[, conv3, bn3], downsample``.
State dicts of SMP's ``ResNetEncoder`` (and torchvision classifiers, once their ``fc.*`` keys
are dropped by ``remap_state_dict``) load with ``strict=True``.

Example::

    encoder = ResNetEncoder("basic", layers=(2, 2, 2, 2))          # resnet18
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 64, 64, 128, 256, 512]; sizes 64, 32, 16, 8, 4, 2
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from segcore.errors import InvalidOptionError
from segcore.nn import ResNetStagesEncoder, check_resnet_layout, initialize_like_torchvision

__all__ = ["BasicBlock", "Bottleneck", "ResNetEncoder", "build_encoder"]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1,
                     groups=groups, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    Input ``(N, in_channels, H, W)`` -> output ``(N, channels, H / stride, W / stride)``.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1,
                 width_per_group: int = 64) -> None:
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise InvalidOptionError(
                f"BasicBlock supports only groups=1 and width_per_group=64, got groups={groups}, "
                f"width_per_group={width_per_group}; use block='bottleneck' for ResNeXt."
            )
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as torchvision: one allocation less per block
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt, carries the stride), 1x1 expand by 4; residual.

    Inner width is ``channels * width_per_group / 64 * groups`` (torchvision's ResNet v1.5).
    Input ``(N, in_channels, H, W)`` -> output ``(N, 4 * channels, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1,
                 width_per_group: int = 64) -> None:
        super().__init__()
        width = int(channels * (width_per_group / 64.0)) * groups
        self.conv1 = _conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}
_STAGE_CHANNELS = (64, 128, 256, 512)


class ResNetEncoder(ResNetStagesEncoder):
    """ResNet / ResNeXt feature extractor following the segcore encoder contract.

    Args:
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50+ and ResNeXt).
        layers: number of blocks in ``layer1..layer4``.
        groups, width_per_group: ResNeXt cardinality and width (``32, 4`` for ``32x4d``).
        depth: number of reductions returned, 1-5 (all layers are kept so weights always fit).
        output_stride: reduction of the last feature; set it with ``make_dilated``.

    ``forward(x)`` returns ``depth + 1`` maps: ``x``, ``relu(bn1(conv1(x)))`` (1/2),
    ``layer1(maxpool(.))`` (1/4), then ``layer2``..``layer4`` (1/8, 1/16, 1/32).
    """

    def __init__(self, block: str = "basic", layers: Sequence[int] = (2, 2, 2, 2),
                 groups: int = 1, width_per_group: int = 64, depth: int = 5,
                 output_stride: int = 32) -> None:
        super().__init__(depth=depth, output_stride=output_stride)
        layers = check_resnet_layout(block, BLOCKS, layers)
        block_class = BLOCKS[block]
        self._groups = groups
        self._width_per_group = width_per_group
        self._block_in_channels = 64

        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block_class, _STAGE_CHANNELS[0], layers[0], stride=1)
        self.layer2 = self._make_layer(block_class, _STAGE_CHANNELS[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block_class, _STAGE_CHANNELS[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block_class, _STAGE_CHANNELS[3], layers[3], stride=2)
        self._out_channels = (3, 64, *(c * block_class.expansion for c in _STAGE_CHANNELS))
        # torchvision's initialisation: He (fan_out) for convolutions, BN as identity.
        initialize_like_torchvision(self)

    def _make_layer(self, block_class: type[BasicBlock] | type[Bottleneck], channels: int,
                    blocks: int, stride: int) -> nn.Sequential:
        out_channels = channels * block_class.expansion
        downsample = None
        if stride != 1 or self._block_in_channels != out_channels:
            downsample = nn.Sequential(
                _conv1x1(self._block_in_channels, out_channels, stride),
                nn.BatchNorm2d(out_channels),
            )
        modules = [block_class(self._block_in_channels, channels, stride, downsample,
                               self._groups, self._width_per_group)]
        self._block_in_channels = out_channels
        modules += [block_class(out_channels, channels, groups=self._groups,
                                width_per_group=self._width_per_group)
                    for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))


def build_encoder(name: str, depth: int = 5, *, block: str, layers: Sequence[int],
                  groups: int = 1, width_per_group: int = 64) -> ResNetEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards.

    Example::

        encoder = build_encoder("resnet18", depth=4, block="basic", layers=(2, 2, 2, 2))
    """
    return ResNetEncoder(block=block, layers=layers, groups=groups,
                         width_per_group=width_per_group, depth=depth)
