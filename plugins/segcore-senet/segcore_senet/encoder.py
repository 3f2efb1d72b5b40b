"""SE-Net encoders: SENet-154, SE-ResNet and SE-ResNeXt, with SMP's module names and math.

The module tree is that of SMP's ``SENetEncoder`` (Cadene's ``pretrainedmodels`` SENet without
``avg_pool``/``dropout``/``last_linear``): ``layer0`` (the stem: ``conv1, bn1, relu1`` and, for
SENet-154, ``conv2, bn2, relu2, conv3, bn3, relu3``), then ``layer1..layer4`` of bottleneck
blocks with ``conv1, bn1, conv2, bn2, conv3, bn3, se_module.fc1, se_module.fc2`` and
``downsample``. The stem's max pooling (``ceil_mode=True``, as the Caffe originals) has no
weights and runs before ``layer1``. State dicts of SMP's encoders load with ``strict=True``;
classifier files (``last_linear.*``) are trimmed by ``remap_state_dict``.

The three block layouts (``p`` = 64, 128, 256, 512 in ``layer1..layer4``):

* ``senet``: 1x1 ``in -> 2p``, 3x3 ``2p -> 4p`` (64 groups, strided), 1x1 ``4p -> 4p``;
* ``se_resnet``: 1x1 ``in -> p`` (strided, as the Caffe models), 3x3 ``p -> p``, 1x1
  ``p -> 4p``;
* ``se_resnext``: 1x1 ``in -> w``, 3x3 ``w -> w`` (32 groups, strided), 1x1 ``w -> 4p``, with
  ``w = p / 16 * 32`` (32x4d).

SENet-154 also projects the identity of the strided stages (``downsample``) with a 3x3
convolution, the others with a 1x1.

Example::

    encoder = SENetEncoder("se_resnet", layers=(3, 4, 6, 3))        # se_resnet50
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 64, 256, 512, 1024, 2048]; sizes 64, 32, ..., 2

Odd sizes: the ``ceil_mode`` pooling has no padding, so an odd size ``s`` at reduction 2 gives
``(s - 1) / 2`` at reduction 4, not ``(s + 1) / 2`` (as in SMP); models pad inputs to
multiples of 32.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.errors import InvalidOptionError
from segcore.nn import ResNetStagesEncoder, check_resnet_layout

__all__ = ["SEBottleneck", "SENetEncoder", "SqueezeExcitation", "build_encoder"]

#: The block layouts (see the module docstring).
BLOCKS = ("senet", "se_resnet", "se_resnext")
_EXPANSION = 4
_STAGE_PLANES = (64, 128, 256, 512)
#: channel reduction inside every squeeze-and-excitation module
_SE_REDUCTION = 16
#: width of one group of the SE-ResNeXt 3x3 convolutions, per 64 planes ("32x4d")
_RESNEXT_BASE_WIDTH = 4


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x * sigmoid(fc2(relu(fc1(mean over H, W of x))))``.

    ``fc1``/``fc2`` are 1x1 convolutions with bias (``channels -> channels // reduction ->
    channels``). Input and output ``(N, channels, H, W)``.
    """

    def __init__(self, channels: int, reduction: int = _SE_REDUCTION) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(scale), inplace=True)))
        return x * scale


class SEBottleneck(nn.Module):
    """Bottleneck block with squeeze-and-excitation on the residual branch.

    ``conv1`` (1x1) ``-> bn1 -> relu -> conv2`` (3x3, grouped) ``-> bn2 -> relu -> conv3``
    (1x1) ``-> bn3 -> se_module``, plus the identity (or ``downsample(x)``), then ReLU.

    Args:
        in_channels: input channels.
        reduce_channels: output channels of ``conv1``.
        mid_channels: output channels of ``conv2``.
        out_channels: output channels of ``conv3`` (and of the block).
        stride: the block's stride; on ``conv1`` when ``stride_on_reduce`` (SE-ResNet, as the
            Caffe models), else on ``conv2``.
        groups: groups of ``conv2``.
        downsample: projection of the identity when shape changes (``None``: identity).

    Input ``(N, in_channels, H, W)`` -> output ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, reduce_channels: int, mid_channels: int,
                 out_channels: int, *, stride: int = 1, stride_on_reduce: bool = False,
                 groups: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, reduce_channels, kernel_size=1,
                               stride=stride if stride_on_reduce else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(reduce_channels)
        self.conv2 = nn.Conv2d(reduce_channels, mid_channels, kernel_size=3,
                               stride=1 if stride_on_reduce else stride, padding=1,
                               groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.se_module = SqueezeExcitation(out_channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.se_module(self.bn3(self.conv3(out)))
        out += identity  # in place: ``out`` is a fresh product, one allocation less per block
        return F.relu(out, inplace=True)


def _block_widths(block: str, planes: int, groups: int) -> tuple[int, int, int]:
    """``(reduce, mid, out)`` channels of a block of ``block`` layout at ``planes``."""
    out = planes * _EXPANSION
    if block == "senet":
        return planes * 2, planes * 4, out
    if block == "se_resnet":
        return planes, planes, out
    width = (planes * _RESNEXT_BASE_WIDTH // 64) * groups
    return width, width, out


class SENetEncoder(ResNetStagesEncoder):
    """SE-Net feature extractor following the segcore encoder contract.

    Args:
        block: ``"senet"`` (SENet-154), ``"se_resnet"`` (SE-ResNet-50/101/152) or
            ``"se_resnext"`` (SE-ResNeXt 32x4d).
        layers: number of blocks in ``layer1..layer4``.
        groups: groups of the 3x3 convolutions (64 for SENet-154, 1 for SE-ResNet, 32 for
            SE-ResNeXt).
        depth: number of reductions returned, 1-5 (all layers are kept so weights always fit).
        output_stride: reduction of the last feature; set it with ``make_dilated``.

    ``forward(x)`` returns ``depth + 1`` maps: ``x``, ``layer0(x)`` (1/2),
    ``layer1(pool(.))`` (1/4), then ``layer2``..``layer4`` (1/8, 1/16, 1/32). Channels are
    ``(3, 128, 256, 512, 1024, 2048)`` for SENet-154, ``(3, 64, 256, 512, 1024, 2048)`` else.
    """

    def __init__(self, block: str = "se_resnet", layers: Sequence[int] = (3, 4, 6, 3),
                 groups: int = 1, depth: int = 5, output_stride: int = 32) -> None:
        super().__init__(depth=depth, output_stride=output_stride)
        layers = check_resnet_layout(block, BLOCKS, layers)
        if not isinstance(groups, int) or groups < 1:
            raise InvalidOptionError(f"groups must be a positive int, got {groups!r}")
        self._block = block
        self._groups = groups

        deep_stem = block == "senet"
        stem_channels = 128 if deep_stem else 64
        self.layer0 = self._make_stem(stem_channels, deep_stem)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
        # SENet-154 projects the identity of strided stages with a 3x3 convolution.
        projection_kernel = 3 if deep_stem else 1
        self._block_in_channels = stem_channels
        self.layer1 = self._make_layer(_STAGE_PLANES[0], layers[0], stride=1, kernel=1)
        self.layer2 = self._make_layer(_STAGE_PLANES[1], layers[1], stride=2,
                                       kernel=projection_kernel)
        self.layer3 = self._make_layer(_STAGE_PLANES[2], layers[2], stride=2,
                                       kernel=projection_kernel)
        self.layer4 = self._make_layer(_STAGE_PLANES[3], layers[3], stride=2,
                                       kernel=projection_kernel)
        self._out_channels = (3, stem_channels, *(p * _EXPANSION for p in _STAGE_PLANES))

    @staticmethod
    def _make_stem(channels: int, deep: bool) -> nn.Sequential:
        if not deep:  # one 7x7 convolution
            return nn.Sequential(OrderedDict([
                ("conv1", nn.Conv2d(3, channels, kernel_size=7, stride=2, padding=3, bias=False)),
                ("bn1", nn.BatchNorm2d(channels)),
                ("relu1", nn.ReLU(inplace=True)),
            ]))
        return nn.Sequential(OrderedDict([  # three 3x3 convolutions, the first strided
            ("conv1", nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)),
            ("bn1", nn.BatchNorm2d(64)),
            ("relu1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False)),
            ("bn2", nn.BatchNorm2d(64)),
            ("relu2", nn.ReLU(inplace=True)),
            ("conv3", nn.Conv2d(64, channels, kernel_size=3, padding=1, bias=False)),
            ("bn3", nn.BatchNorm2d(channels)),
            ("relu3", nn.ReLU(inplace=True)),
        ]))

    def _make_layer(self, planes: int, blocks: int, stride: int, kernel: int) -> nn.Sequential:
        out_channels = planes * _EXPANSION
        downsample = None
        if stride != 1 or self._block_in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self._block_in_channels, out_channels, kernel_size=kernel,
                          stride=stride, padding=kernel // 2, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        stride_on_reduce = self._block == "se_resnet"
        reduce, mid, out = _block_widths(self._block, planes, self._groups)
        modules = []
        for index in range(blocks):
            modules.append(SEBottleneck(
                self._block_in_channels, reduce, mid, out,
                stride=stride if index == 0 else 1, stride_on_reduce=stride_on_reduce,
                groups=self._groups, downsample=downsample if index == 0 else None,
            ))
            self._block_in_channels = out
        return nn.Sequential(*modules)

    # the ImageNet classifier of classifier files, dropped by remap_state_dict
    classifier_keys = ("last_linear.weight", "last_linear.bias")

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer0(x)

    def forward_pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def build_encoder(name: str, depth: int = 5, *, block: str, layers: Sequence[int],
                  groups: int = 1) -> SENetEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards.

    Example::

        encoder = build_encoder("se_resnext50_32x4d", depth=4, block="se_resnext",
                                layers=(3, 4, 6, 3), groups=32)
    """
    return SENetEncoder(block=block, layers=layers, groups=groups, depth=depth)
