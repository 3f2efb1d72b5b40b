"""EfficientNet B0-B8 / L2 / Lite0-4 encoders built from timm's ``EfficientNet`` blocks.

The module tree is timm's ``EfficientNet`` without its pooling and classifier: ``conv_stem``,
``bn1`` (batch norm + activation), ``blocks`` (7 stages), ``conv_head``, ``bn2``. The head
(``conv_head``/``bn2``) is not used by ``forward`` but kept so that SMP's encoder state dicts
(and timm's classification checkpoints, once ``remap_state_dict`` drops the classifier) load
with ``strict=True``.

Features (depth 5, B0 channels): the input; ``bn1(conv_stem(x))`` 1/2 (32); after
``blocks[1]`` 1/4 (24); ``blocks[2]`` 1/8 (40); ``blocks[4]`` 1/16 (112); ``blocks[6]`` 1/32
(320).

Example::

    encoder = EfficientNetEncoder(channel_multiplier=1.0, depth_multiplier=1.0)   # B0
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 32, 24, 40, 112, 320]; sizes 64, 32, 16, 8, 4, 2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import torch
from timm.models._efficientnet_builder import decode_arch_def, round_channels
from timm.models.efficientnet import EfficientNet
from torch import nn

from segcore.encoder import EncoderBase

__all__ = ["EfficientNetEncoder", "build_encoder"]

# The EfficientNet-B0 trunk (Tan & Le, 2019), one row per stage:
# (block type, repeats, kernel, stride, expansion ratio, output channels). "ds" is a depthwise
# separable block, "ir" an inverted residual (MBConv). Width and depth multipliers scale it.
_TRUNK: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("ds", 1, 3, 1, 1, 16),
    ("ir", 2, 3, 2, 6, 24),
    ("ir", 2, 5, 2, 6, 40),
    ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112),
    ("ir", 4, 5, 2, 6, 192),
    ("ir", 1, 3, 1, 6, 320),
)
_SQUEEZE_EXCITE_RATIO = 0.25
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


def _arch_def(squeeze_excite: bool) -> list[list[str]]:
    """The trunk in timm's block-string notation (``ir_r2_k3_s2_e6_c24_se0.25``)."""
    suffix = f"_se{_SQUEEZE_EXCITE_RATIO}" if squeeze_excite else ""
    return [[f"{kind}_r{repeats}_k{kernel}_s{stride}_e{expansion}_c{channels}{suffix}"]
            for kind, repeats, kernel, stride, expansion, channels in _TRUNK]


class EfficientNetEncoder(EncoderBase):
    """EfficientNet feature extractor following the segcore encoder contract.

    Args:
        channel_multiplier: width multiplier (B0 1.0 ... B7 2.0, B8 2.2, L2 4.3).
        depth_multiplier: multiplier of the number of blocks per stage (B0 1.0 ... L2 5.3).
        lite: EfficientNet-Lite: ReLU6, no squeeze-excite, fixed stem and head widths, first
            and last stage not repeated more.
        drop_path_rate: stochastic depth of the blocks during training (SMP's 0.2).
        depth: number of reductions returned, 1-5 (all blocks are kept so weights always fit).

    ``forward(x)`` with ``x`` of shape ``(N, C, H, W)`` returns ``depth + 1`` maps: ``x``,
    then the maps at 1/2, 1/4, 1/8, 1/16 and 1/32 (``ceil`` of the size for odd inputs).
    """

    def __init__(self, channel_multiplier: float = 1.0, depth_multiplier: float = 1.0,
                 lite: bool = False, drop_path_rate: float = 0.2, depth: int = 5) -> None:
        super().__init__(depth=depth)
        block_args = decode_arch_def(_arch_def(squeeze_excite=not lite), depth_multiplier,
                                     fix_first_last=lite)
        round_chs = partial(round_channels, multiplier=channel_multiplier)
        # timm builds (and initialises) the trunk; the classifier is left out (num_classes=0).
        network = EfficientNet(
            block_args=block_args,
            num_classes=0,
            global_pool="",
            num_features=_HEAD_CHANNELS if lite else round_chs(_HEAD_CHANNELS),
            stem_size=_STEM_CHANNELS,
            fix_stem=lite,
            round_chs_fn=round_chs,
            act_layer=nn.ReLU6 if lite else nn.SiLU,  # SiLU is Swish, as one fused kernel
            drop_path_rate=drop_path_rate,
        )
        self.conv_stem = network.conv_stem
        self.bn1 = network.bn1
        self.blocks = network.blocks
        self.conv_head = network.conv_head
        self.bn2 = network.bn2
        # timm's feature_info: ends of the stages before each stride (1/2 is block 0's output,
        # whose place the stem takes, as in SMP).
        stage_channels = [int(info["num_chs"]) for info in network.feature_info]
        self._out_channels = (3, self.conv_stem.out_channels, *stage_channels[1:])

    def get_stages(self) -> Mapping[int, Sequence[nn.Module]]:
        return {16: [self.blocks[3], self.blocks[4]], 32: [self.blocks[5], self.blocks[6]]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the class docstring)."""
        features = [x]
        # One branch per level, integer indices only: TorchScript and torch.compile take it.
        if self._depth >= 1:
            x = self.bn1(self.conv_stem(x))
            features.append(x)
        if self._depth >= 2:
            x = self.blocks[1](self.blocks[0](x))
            features.append(x)
        if self._depth >= 3:
            x = self.blocks[2](x)
            features.append(x)
        if self._depth >= 4:
            x = self.blocks[4](self.blocks[3](x))
            features.append(x)
        if self._depth >= 5:
            x = self.blocks[6](self.blocks[5](x))
            features.append(x)
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop the ImageNet classifier (``classifier.weight``/``.bias``) of timm/SMP files."""
        return {k: v for k, v in state_dict.items()
                if k not in ("classifier.weight", "classifier.bias")}


def build_encoder(name: str, depth: int = 5, *, channel_multiplier: float,
                  depth_multiplier: float, lite: bool = False) -> EfficientNetEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards.

    Example::

        encoder = build_encoder("timm-efficientnet-b3", channel_multiplier=1.2,
                                depth_multiplier=1.4)
    """
    return EfficientNetEncoder(channel_multiplier=channel_multiplier,
                               depth_multiplier=depth_multiplier, lite=lite, depth=depth)
