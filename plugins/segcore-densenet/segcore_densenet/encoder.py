"""DenseNet encoders with torchvision's module names and math (no torchvision needed).

The module tree is torchvision's ``DenseNet.features`` without ``classifier``: ``conv0, norm0,
relu0, pool0, denseblock1, transition1, ..., denseblock4, norm5``; a dense layer has
``norm1, relu1, conv1, norm2, relu2, conv2`` and a transition ``norm, relu, conv, pool``.
State dicts of SMP's ``DenseNetEncoder`` load with ``strict=True``; torchvision's original
classifier files (old ``norm.1``-style keys, ``classifier.*``) load through
``remap_state_dict``.

Features are SMP's: the stem after its ReLU (1/2), then each dense block followed by its
transition's normalisation and ReLU (1/4, 1/8, 1/16; the transition's convolution and average
pool start the next stage), then ``norm5`` of the last block (1/32, no ReLU).

Example::

    encoder = DenseNetEncoder(growth_rate=32, block_config=(6, 12, 24, 16))   # densenet121
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 64, 256, 512, 1024, 1024]; sizes 64, 32, ..., 2
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from segcore.encoder import EncoderBase
from segcore.errors import InvalidOptionError

__all__ = ["DenseBlock", "DenseLayer", "DenseNetEncoder", "Transition", "build_encoder"]


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (to ``bn_size * growth_rate``), BN-ReLU-3x3 conv (to ``growth_rate``).

    Input ``(N, in_channels, H, W)`` (all earlier maps of the block, concatenated) -> output
    ``(N, growth_rate, H, W)``.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        inner = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, inner, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(inner)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inner, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    """``layers`` dense layers (``denselayer1``...), each fed with all earlier maps.

    Input ``(N, C, H, W)`` -> output ``(N, C + layers * growth_rate, H, W)``.
    """

    def __init__(self, layers: int, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__({
            f"denselayer{i + 1}": DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size)
            for i in range(layers)
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Module):
    """BN, ReLU, 1x1 convolution, 2x2 average pool (halves size, and channels in DenseNets).

    The encoder calls the parts one by one (its feature is taken after the ReLU); ``forward``
    runs all four: ``(N, in_channels, H, W)`` -> ``(N, out_channels, H / 2, W / 2)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.norm(x))))


class DenseNetEncoder(EncoderBase):
    """DenseNet-BC feature extractor following the segcore encoder contract.

    Args:
        num_init_features: channels of the stem convolution (64; 96 for DenseNet-161).
        growth_rate: channels each dense layer adds (32; 48 for DenseNet-161).
        block_config: dense layers in each of the 4 blocks.
        bn_size: width of a layer's bottleneck, in multiples of ``growth_rate``.
        depth: number of reductions returned, 1-5 (all layers are kept so weights always fit).

    ``forward(x)`` returns ``depth + 1`` maps (see the module docstring). DenseNet has no
    dilated mode (its reductions are pools), as in SMP. Transitions halve the channels.
    """

    def __init__(self, num_init_features: int = 64, growth_rate: int = 32,
                 block_config: Sequence[int] = (6, 12, 24, 16), bn_size: int = 4,
                 depth: int = 5) -> None:
        super().__init__(depth=depth)
        block_config = tuple(block_config)
        if len(block_config) != 4 or not all(isinstance(n, int) and n >= 1 for n in block_config):
            raise InvalidOptionError(
                f"block_config must be 4 positive ints (layers per block), got {block_config!r}")
        modules: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False),
            norm0=nn.BatchNorm2d(num_init_features),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        channels = num_init_features
        out_channels = [3, num_init_features]
        for i, layers in enumerate(block_config, start=1):
            modules[f"denseblock{i}"] = DenseBlock(layers, channels, growth_rate, bn_size)
            channels += layers * growth_rate
            out_channels.append(channels)
            if i < len(block_config):
                modules[f"transition{i}"] = Transition(channels, channels // 2)
                channels //= 2
        modules["norm5"] = nn.BatchNorm2d(channels)
        self.features = nn.Sequential(modules)
        self._out_channels = tuple(out_channels)
        self._initialise()

    def _initialise(self) -> None:
        # torchvision's initialisation: He (fan_in) for convolutions, BN as identity.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: ``(N, in_channels, H, W)`` -> ``depth + 1`` maps (see the module docstring)."""
        f = self.features
        features = [x]
        # One branch per stage (no loop over a slice of modules): TorchScript compiles this.
        if self._depth >= 1:
            x = f.relu0(f.norm0(f.conv0(x)))
            features.append(x)
        if self._depth >= 2:
            x = f.transition1.relu(f.transition1.norm(f.denseblock1(f.pool0(x))))
            features.append(x)
        if self._depth >= 3:
            x = f.transition1.pool(f.transition1.conv(x))
            x = f.transition2.relu(f.transition2.norm(f.denseblock2(x)))
            features.append(x)
        if self._depth >= 4:
            x = f.transition2.pool(f.transition2.conv(x))
            x = f.transition3.relu(f.transition3.norm(f.denseblock3(x)))
            features.append(x)
        if self._depth >= 5:
            x = f.transition3.pool(f.transition3.conv(x))
            x = f.norm5(f.denseblock4(x))
            features.append(x)
        return features

    def remap_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map torchvision classifier files to this module.

        Renames the old dense-layer keys (``...denselayer1.norm.1.weight`` ->
        ``...denselayer1.norm1.weight``) and drops ``classifier.*``; other keys pass unchanged.
        """
        return {_OLD_LAYER_KEY.sub(r"\1\2.", k): v for k, v in state_dict.items()
                if not k.startswith("classifier.")}


#: ``denselayer<i>.norm.1.`` (torchvision's files before 0.3) -> ``denselayer<i>.norm1.``
_OLD_LAYER_KEY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


def build_encoder(name: str, depth: int = 5, *, num_init_features: int, growth_rate: int,
                  block_config: Sequence[int]) -> DenseNetEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights and adapts the input channels afterwards.

    Example::

        encoder = build_encoder("densenet121", num_init_features=64, growth_rate=32,
                                block_config=(6, 12, 24, 16))
    """
    return DenseNetEncoder(num_init_features=num_init_features, growth_rate=growth_rate,
                           block_config=block_config, depth=depth)
