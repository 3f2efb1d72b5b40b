"""Selective-kernel ResNet / ResNeXt encoders built from timm's ``ResNet`` and SK blocks.

The module tree is timm's ``ResNet`` without pooling and classifier: ``conv1, bn1, act1,
maxpool, layer1..layer4`` whose blocks are ``SelectiveKernelBasic`` (SK-ResNet-18/34) or
``SelectiveKernelBottleneck`` (SK-ResNeXt-50 32x4d). SMP's encoder state dicts (and timm's
classification checkpoints, once ``remap_state_dict`` drops ``fc``) load with ``strict=True``.

Example::

    encoder = SKResNetEncoder("basic", layers=(2, 2, 2, 2))          # timm-skresnet18
    features = encoder(torch.rand(2, 3, 64, 64))
    [f.shape[1] for f in features]   # [3, 64, 64, 128, 256, 512]; sizes 64, 32, 16, 8, 4, 2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from timm.models.resnet import ResNet
from timm.models.sknet import SelectiveKernelBasic, SelectiveKernelBottleneck
from torch import nn

from segcore.nn import ResNetStagesEncoder, check_resnet_layout

__all__ = ["SKResNetEncoder", "build_encoder"]

BLOCKS: dict[str, type[nn.Module]] = {
    "basic": SelectiveKernelBasic,
    "bottleneck": SelectiveKernelBottleneck,
}


class SKResNetEncoder(ResNetStagesEncoder):
    """Selective-kernel ResNe(X)t feature extractor following the segcore encoder contract.

    Args:
        block: ``"basic"`` (SK-ResNet-18/34) or ``"bottleneck"`` (SK-ResNeXt).
        layers: number of blocks in ``layer1..layer4``.
        cardinality, base_width: ResNeXt groups and width per group (``32, 4`` for 32x4d).
        sk_rd_ratio, sk_split_input: attention width ratio and input splitting of the
            selective-kernel convolutions (``None``: timm's defaults).
        depth: number of reductions returned, 1-5 (all layers are kept so weights always fit).

    ``forward(x)`` with ``x`` of shape ``(N, C, H, W)`` returns ``depth + 1`` maps: ``x``,
    ``act1(bn1(conv1(x)))`` (1/2), ``layer1(maxpool(.))`` (1/4), then ``layer2``..``layer4``
    (1/8, 1/16, 1/32).
    """

    def __init__(self, block: str = "basic", layers: Sequence[int] = (2, 2, 2, 2),
                 cardinality: int = 1, base_width: int = 64, sk_rd_ratio: float | None = None,
                 sk_split_input: bool | None = None, depth: int = 5) -> None:
        super().__init__(depth=depth)
        layers = check_resnet_layout(block, BLOCKS, layers)
        sk_kwargs: dict[str, Any] = {}
        if sk_rd_ratio is not None:
            sk_kwargs["rd_ratio"] = sk_rd_ratio
        if sk_split_input is not None:
            sk_kwargs["split_input"] = sk_split_input
        # timm builds (and initialises) the network; the classifier is left out (num_classes=0).
        network = ResNet(
            block=BLOCKS[block],
            layers=layers,
            num_classes=0,
            global_pool="",
            cardinality=cardinality,
            base_width=base_width,
            zero_init_last=False,
            block_args={"sk_kwargs": sk_kwargs} if sk_kwargs else None,
        )
        self.conv1 = network.conv1
        self.bn1 = network.bn1
        self.act1 = network.act1
        self.maxpool = network.maxpool
        self.layer1 = network.layer1
        self.layer2 = network.layer2
        self.layer3 = network.layer3
        self.layer4 = network.layer4
        self._out_channels = (3, self.conv1.out_channels,
                              *(int(info["num_chs"]) for info in network.feature_info[1:]))

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv1(x)))


def build_encoder(name: str, depth: int = 5, *, block: str, layers: Sequence[int],
                  cardinality: int = 1, base_width: int = 64, sk_rd_ratio: float | None = None,
                  sk_split_input: bool | None = None) -> SKResNetEncoder:
    """The factory of the specs: construct the encoder (3 input channels, output stride 32).

    The core loads pretrained weights, adapts the input channels (``set_in_channels``) and
    dilates (``make_dilated``) afterwards.

    Example::

        encoder = build_encoder("timm-skresnet18", block="basic", layers=(2, 2, 2, 2),
                                sk_rd_ratio=1 / 8, sk_split_input=True)
    """
    return SKResNetEncoder(block=block, layers=layers, cardinality=cardinality,
                           base_width=base_width, sk_rd_ratio=sk_rd_ratio,
                           sk_split_input=sk_split_input, depth=depth)
