"""EfficientNet-B0..B7 encoders with the module names of SMP's ``EfficientNetEncoder``.

The module tree is that of the EfficientNet of ``efficientnet-pytorch`` (which SMP 0.6.0
vendors), classifier removed: ``_conv_stem, _bn0, _blocks.<i>, _conv_head, _bn1``; each block
has ``[_expand_conv, _bn0,] _depthwise_conv, _bn1, _se_reduce, _se_expand, _project_conv,
_bn2``. State dicts of SMP's encoder load with ``strict=True``. ``_conv_head`` and ``_bn1``
(the 1x1 convolution to 1280 x width channels) are kept for that reason but are not part of
any feature, as in SMP.

Facts of the original that this implementation reproduces (written from scratch):

* **"same" padding, static**: every convolution pads like TensorFlow's ``SAME`` for the
  *nominal* resolution of the model (224 for B0 ... 600 for B7), fixed when the model is built,
  whatever the input size. For even sizes a stride-2 convolution pads one pixel more at the
  bottom/right; for odd sizes it pads symmetrically. Symmetric padding is folded
  into the convolution itself; only asymmetric padding runs a separate ``static_padding``
  (``nn.ZeroPad2d``) before the convolution.
* **drop connect** (stochastic depth) on the residual blocks in training mode, with the
  probability of block ``i`` equal to ``0.2 * i / number_of_blocks``; identity in eval mode.
* **swish** (SiLU) after the stem, the expansion, the depthwise convolution and inside the
  squeeze-and-excitation; ``torch.nn.functional.silu`` already keeps only its input for the
  backward pass (the "memory-efficient swish" of older code), and is the same function in eval.
* **features** are taken after the stem (1/2) and after the blocks listed in
  ``feature_blocks`` (1/4, 1/8, 1/16, 1/32). For B0 the 1/16 feature is taken after the first
  block of the 112-channel stage (block 8), not after its last one, as SMP does.
* **dilation** (``get_stages``, as SMP's): the blocks after the 1/8 feature up to the 1/16
  feature run at reduction 16, every block after the 1/16 feature at reduction 32. For
  ``output_stride=16`` the second group is dilated by 2; for 8, the first by 2 and the second
  by 4. A dilated convolution has stride 1 and symmetric padding ``kernel // 2 * rate``.

Example::

    encoder = EfficientNetEncoder(width=1.0, depth_multiplier=1.0, image_size=224,
                                  feature_blocks=(2, 4, 8, 15))      # efficientnet-b0
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 32, 24, 40, 112, 320]; sizes 64, 32, 16, 8, 4, 2
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.encoder import EncoderBase
from segcore.errors import InvalidOptionError

__all__ = [
    "EfficientNetEncoder",
    "MBConvBlock",
    "SameConv2d",
    "build_encoder",
    "same_padding",
    "stage_layout",
]

#: The B0 stages: (repeats, kernel, stride, expansion, input channels, output channels).
#: Every stage has squeeze-and-excitation with ratio 0.25 and identity skips.
BASE_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
SE_RATIO = 0.25
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CHANNEL_DIVISOR = 8
BN_MOMENTUM = 1.0 - 0.99  # TensorFlow's decay 0.99, in PyTorch's convention (same float)
BN_EPS = 1e-3
DROP_CONNECT_RATE = 0.2


def round_channels(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Scale ``channels`` by ``width`` and round to a multiple of ``divisor`` (never by >10%)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_multiplier: float) -> int:
    """Scale the number of blocks of a stage by ``depth_multiplier`` (rounded up)."""
    return math.ceil(depth_multiplier * repeats)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding (before, after) of one dimension of length ``size``.

    The output has ``ceil(size / stride)`` positions; the odd pixel of padding goes after.

    Example::

        same_padding(224, 3, 2)   # (0, 1)
        same_padding(75, 5, 2)    # (2, 2)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def stage_layout(width: float, depth_multiplier: float
                 ) -> list[tuple[int, int, int, int, int, int]]:
    """The stages of a scaled EfficientNet: (repeats, kernel, stride, expansion, in, out)."""
    return [
        (round_repeats(repeats, depth_multiplier), kernel, stride, expansion,
         round_channels(in_channels, width), round_channels(out_channels, width))
        for repeats, kernel, stride, expansion, in_channels, out_channels in BASE_STAGES
    ]


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding computed for a nominal input size.

    Symmetric padding is the convolution's own ``padding``; asymmetric padding is applied by
    ``static_padding`` (``nn.ZeroPad2d``) first, otherwise ``static_padding`` is an
    ``nn.Identity``. ``segcore.encoder.replace_strides_with_dilation`` knows this attribute and
    turns it into an identity when it dilates the convolution.

    Args:
        in_channels, out_channels, kernel_size, stride, groups, bias: as ``nn.Conv2d``.
        image_size: the nominal (height, width) of the input the padding is computed for.

    Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, ~H / stride, ~W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False,
                 image_size: tuple[int, int] = (224, 224)) -> None:
        top, bottom = same_padding(image_size[0], kernel_size, stride)
        left, right = same_padding(image_size[1], kernel_size, stride)
        symmetric = top == bottom and left == right
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=(top, left) if symmetric else 0, groups=groups, bias=bias)
        self.static_padding: nn.Module = (
            nn.Identity() if symmetric else nn.ZeroPad2d((left, right, top, bottom))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.static_padding(x), self.weight, self.bias)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation (EfficientNet's block).

    1x1 expansion (skipped when ``expansion == 1``) -> BN -> swish -> depthwise ``kernel``
    convolution with ``stride`` -> BN -> swish -> squeeze-and-excitation -> 1x1 projection ->
    BN; plus the input (with drop connect in training mode) when the stride is 1 and the
    channels do not change.

    Args:
        in_channels, out_channels: channels of the input and output.
        kernel, stride, expansion: depthwise kernel size, its stride, channel expansion factor.
        se_channels: channels of the squeeze-and-excitation bottleneck.
        image_size: nominal input size of the block (for the "same" padding).
        drop_connect_prob: probability of dropping the residual branch (training mode only).

    Input ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expansion: int, se_channels: int, image_size: tuple[int, int],
                 drop_connect_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_connect_prob < 1.0:
            raise InvalidOptionError(
                f"drop_connect_prob must be in [0, 1), got {drop_connect_prob!r}"
            )
        hidden = in_channels * expansion
        self._has_expansion = expansion != 1
        if self._has_expansion:
            self._expand_conv: nn.Module = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0: nn.Module = _batch_norm(hidden)
        else:
            self._expand_conv = nn.Identity()
            self._bn0 = nn.Identity()
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden,
                                          image_size=image_size)
        self._bn1 = _batch_norm(hidden)
        self._se_reduce = nn.Conv2d(hidden, se_channels, 1)
        self._se_expand = nn.Conv2d(se_channels, hidden, 1)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _batch_norm(out_channels)
        self._residual = stride == 1 and in_channels == out_channels
        self.drop_connect_prob = float(drop_connect_prob)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self._has_expansion:
            x = F.silu(self._bn0(self._expand_conv(x)))
        x = F.silu(self._bn1(self._depthwise_conv(x)))
        scale = self._se_expand(F.silu(self._se_reduce(F.adaptive_avg_pool2d(x, 1))))
        x = torch.sigmoid(scale) * x
        x = self._bn2(self._project_conv(x))
        if self._residual:
            if self.training and self.drop_connect_prob > 0.0:
                x = drop_connect(x, self.drop_connect_prob)
            x = x + inputs
        return x


def drop_connect(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``prob``, scale the others by ``1 / keep``.

    ``x``: ``(N, C, H, W)``; draws ``N`` uniform numbers (``torch.rand``) from the global
    generator, in the same order as SMP, so a seeded training step gives the same result.
    """
    keep = 1.0 - prob
    mask = torch.floor(keep + torch.rand([x.shape[0], 1, 1, 1], dtype=x.dtype, device=x.device))
    return x / keep * mask


class EfficientNetEncoder(EncoderBase):
    """EfficientNet feature extractor following the segcore encoder contract.

    Args:
        width: channel multiplier (1.0 for B0 ... 2.0 for B7).
        depth_multiplier: block-count multiplier (1.0 for B0 ... 3.1 for B7).
        image_size: nominal resolution the static "same" padding is computed for.
        feature_blocks: indices of the blocks whose outputs are the features at reductions
            4, 8, 16 and 32.
        depth: number of reductions returned, 1-5 (all blocks are kept so weights always fit).
        drop_connect_rate: drop-connect probability of the last block (linear from 0).

    ``forward(x)`` returns ``depth + 1`` maps: ``x``, ``swish(_bn0(_conv_stem(x)))`` (1/2),
    then the outputs of ``_blocks[i]`` for ``i`` in ``feature_blocks``. Blocks after the last
    needed one are not run.
    """

    def __init__(self, width: float = 1.0, depth_multiplier: float = 1.0,
                 image_size: int = 224, feature_blocks: Sequence[int] = (2, 4, 8, 15),
                 depth: int = 5, output_stride: int = 32,
                 drop_connect_rate: float = DROP_CONNECT_RATE) -> None:
        super().__init__(depth=depth, output_stride=output_stride)
        stages = stage_layout(width, depth_multiplier)
        block_count = sum(stage[0] for stage in stages)
        feature_blocks = [int(i) for i in feature_blocks]
        if (len(feature_blocks) != 4 or sorted(set(feature_blocks)) != feature_blocks
                or feature_blocks[0] < 0 or feature_blocks[-1] >= block_count):
            raise InvalidOptionError(
                f"feature_blocks must be 4 increasing block indices below {block_count}, "
                f"got {feature_blocks!r}"
            )
        size = (image_size, image_size)
        stem_channels = round_channels(STEM_CHANNELS, width)
        self._conv_stem = SameConv2d(3, stem_channels, 3, stride=2, image_size=size)
        self._bn0 = _batch_norm(stem_channels)
        size = _reduced(size, 2)

        blocks: list[MBConvBlock] = []
        channels = {}  # block index -> output channels
        for repeats, kernel, stride, expansion, in_channels, out_channels in stages:
            for repeat in range(repeats):
                index = len(blocks)
                block_in = in_channels if repeat == 0 else out_channels
                block_stride = stride if repeat == 0 else 1
                blocks.append(MBConvBlock(
                    block_in, out_channels, kernel, block_stride, expansion,
                    max(1, int(block_in * SE_RATIO)), size,
                    drop_connect_rate * index / block_count,
                ))
                channels[index] = out_channels
                size = _reduced(size, block_stride)
        self._blocks = nn.ModuleList(blocks)
        last_channels = stages[-1][5]
        head_channels = round_channels(HEAD_CHANNELS, width)
        self._conv_head = nn.Conv2d(last_channels, head_channels, 1, bias=False)
        self._bn1 = _batch_norm(head_channels)

        self._feature_blocks = feature_blocks
        self._out_channels = (3, stem_channels, *(channels[i] for i in feature_blocks))
        self._last_block = self._last_block_for(depth)

    def _last_block_for(self, depth: int) -> int:
        return self._feature_blocks[depth - 2] if depth >= 2 else -1

    def get_stages(self) -> dict[int, list[nn.Module]]:
        """Blocks after the 1/8 feature up to the 1/16 feature, and all blocks after that."""
        blocks = list(self._blocks)
        _, eighth, sixteenth, _ = self._feature_blocks
        return {16: blocks[eighth + 1: sixteenth + 1], 32: blocks[sixteenth + 1:]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        if self._depth >= 1:
            x = F.silu(self._bn0(self._conv_stem(x)))
            features.append(x)
        # A loop over the whole ModuleList (no slice, no break): TorchScript unrolls it and
        # torch.compile folds the index tests, which only read Python ints.
        for index, block in enumerate(self._blocks):
            if index <= self._last_block:
                x = block(x)
                if index in self._feature_blocks:
                    features.append(x)
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``_fc.weight``, ``_fc.bias``) of classification files."""
        return {k: v for k, v in state_dict.items() if k not in ("_fc.weight", "_fc.bias")}


def _reduced(size: tuple[int, int], stride: int) -> tuple[int, int]:
    return -(-size[0] // stride), -(-size[1] // stride)


def build_encoder(name: str, depth: int = 5, *, width: float, depth_multiplier: float,
                  image_size: int, feature_blocks: Sequence[int]) -> EfficientNetEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards.

    Example::

        encoder = build_encoder("efficientnet-b0", depth=4, width=1.0, depth_multiplier=1.0,
                                image_size=224, feature_blocks=(2, 4, 8, 15))
    """
    return EfficientNetEncoder(width=width, depth_multiplier=depth_multiplier,
                               image_size=image_size, feature_blocks=feature_blocks,
                               depth=depth)
