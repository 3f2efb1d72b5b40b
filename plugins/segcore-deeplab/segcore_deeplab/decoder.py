"""The DeepLabV3 and DeepLabV3+ decoders and their atrous spatial pyramid pooling (ASPP).

Module names follow SMP's decoders (``aspp``, ``conv``, ``bn``, ``relu`` for DeepLabV3;
``aspp``, ``up``, ``block1``, ``block2`` for DeepLabV3+; ``convs`` and ``project`` inside ASPP),
so SMP checkpoints load unchanged and give the same outputs.

Papers: DeepLabV3 https://arxiv.org/abs/1706.05587, DeepLabV3+ https://arxiv.org/abs/1802.02611.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segcore.errors import EncoderCapabilityError, InvalidOptionError
from segcore.nn import SeparableConv2d

#: channels of the reduced 1/4-resolution features in DeepLabV3+ (the paper's choice)
HIGH_RESOLUTION_CHANNELS = 48
#: the features DeepLabV3+ fuses with the ASPP output: reduction 4
HIGH_RESOLUTION_LEVEL = 2


def _atrous_rates(rates: Iterable[int]) -> tuple[int, int, int]:
    rates = tuple(rates)
    if len(rates) != 3 or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 1
                                  for r in rates):
        raise InvalidOptionError(
            f"atrous_rates must be three positive ints (one per atrous branch), got {rates!r}"
        )
    return rates  # type: ignore[return-value]


class ASPPConv(nn.Sequential):
    """3x3 atrous convolution -> BatchNorm -> ReLU; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=dilation,
                      dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class ASPPSeparableConv(nn.Sequential):
    """3x3 atrous depthwise-separable convolution -> BatchNorm -> ReLU; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(
            SeparableConv2d(in_channels, out_channels, kernel_size=3, padding=dilation,
                            dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class ASPPPooling(nn.Sequential):
    """Image-level features: global average pool -> 1x1 conv -> BatchNorm -> ReLU, spread back
    over the input's spatial size.

    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, H, W)``. In training mode the
    BatchNorm sees one value per channel and sample, so it needs a batch of at least 2 (as in
    SMP); in eval mode any batch works.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Sizes are read from the shape (never from tensor values), so torch.compile and
        # torch.export trace this without graph breaks, with static or symbolic sizes.
        height, width = x.shape[-2], x.shape[-1]
        pooled = x
        for module in self:  # not super().forward(x), which TorchScript cannot compile
            pooled = module(pooled)
        return F.interpolate(pooled, size=(height, width), mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling.

    Five parallel branches on the same input (``convs``: a 1x1 convolution, three atrous
    convolutions with ``atrous_rates``, image pooling), concatenated and projected back to
    ``out_channels`` with dropout (``project``).

    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, H, W)``.

    Example::

        aspp = ASPP(512, 256, atrous_rates=(12, 24, 36))
        aspp(torch.rand(2, 512, 8, 8)).shape   # (2, 256, 8, 8)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        atrous_rates: Iterable[int],
        separable: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        atrous_branch = ASPPSeparableConv if separable else ASPPConv
        branches: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            )
        ]
        branches += [atrous_branch(in_channels, out_channels, rate)
                     for rate in _atrous_rates(atrous_rates)]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            nn.Conv2d(len(branches) * out_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class DeepLabV3Decoder(nn.Module):
    """ASPP on the deepest encoder features, then 3x3 conv -> BatchNorm -> ReLU.

    Takes the encoder's feature list and returns ``(N, out_channels, h, w)`` at the size of the
    last feature (1/output_stride of the input).

    Example::

        decoder = DeepLabV3Decoder(in_channels=512, out_channels=256, atrous_rates=(12, 24, 36))
        decoder([torch.rand(2, 512, 8, 8)]).shape   # (2, 256, 8, 8)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        atrous_rates: Iterable[int] = (12, 24, 36),
        aspp_separable: bool = False,
        aspp_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, out_channels, atrous_rates, separable=aspp_separable,
                         dropout=aspp_dropout)
        self.conv = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.register_load_state_dict_pre_hook(_rename_sequential_keys)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.relu(self.bn(self.conv(self.aspp(features[-1]))))


# Checkpoints of old SMP versions stored this decoder as a Sequential (children 0, 1, 2).
_OLD_CHILD_NAMES = {"0.": "aspp.", "1.": "conv.", "2.": "bn."}


def _rename_sequential_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str,
                            *args: Any) -> None:
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        for old, new in _OLD_CHILD_NAMES.items():
            if rest.startswith(old):
                state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)
                break


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabV3+ decoder: ASPP on the deepest features, upsampled to 1/4 of the input and fused
    with the encoder's 1/4-resolution features.

    Args:
        encoder_channels: channels of the encoder features (the input first); at least 4 entries.
        encoder_depth: number of encoder stages used, 3-5.
        out_channels: channels of ASPP and of the output.
        atrous_rates: dilation rates of the three atrous ASPP branches.
        output_stride: reduction of the deepest features, 8 or 16.
        aspp_separable: depthwise-separable atrous convolutions in ASPP.
        aspp_dropout: dropout after the ASPP projection.

    Returns ``(N, out_channels, H / 4, W / 4)`` for an input of ``H x W``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_depth: int = 5,
        out_channels: int = 256,
        atrous_rates: Iterable[int] = (12, 24, 36),
        output_stride: int = 16,
        aspp_separable: bool = True,
        aspp_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if encoder_depth < 3:
            raise EncoderCapabilityError(
                f"DeepLabV3Plus needs an encoder depth of at least 3 (it fuses the 1/4-resolution "
                f"features with the deepest ones), got {encoder_depth}. Use encoder_depth=3, 4 "
                f"or 5."
            )
        self.aspp = nn.Sequential(
            ASPP(encoder_channels[-1], out_channels, atrous_rates, separable=aspp_separable,
                 dropout=aspp_dropout),
            SeparableConv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.up = nn.Upsample(scale_factor=aspp_upscale(encoder_depth, output_stride),
                              mode="bilinear", align_corners=True)
        high_resolution_channels = encoder_channels[HIGH_RESOLUTION_LEVEL]
        self.block1 = nn.Sequential(
            nn.Conv2d(high_resolution_channels, HIGH_RESOLUTION_CHANNELS, kernel_size=1,
                      bias=False),
            nn.BatchNorm2d(HIGH_RESOLUTION_CHANNELS),
            nn.ReLU(),
        )
        self.block2 = nn.Sequential(
            SeparableConv2d(HIGH_RESOLUTION_CHANNELS + out_channels, out_channels, kernel_size=3,
                            padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        context = self.up(self.aspp(features[-1]))
        details = self.block1(features[2])  # HIGH_RESOLUTION_LEVEL (TorchScript reads no globals)
        return self.block2(torch.cat([context, details], dim=1))


def aspp_upscale(encoder_depth: int, output_stride: int) -> int:
    """How much DeepLabV3+ upsamples the ASPP output to reach 1/4 of the input size.

    The deepest features are at ``min(output_stride, 2 ** encoder_depth)``: 1/16 (factor 4) with
    output stride 16 and depth 4-5, else 1/8 (factor 2).
    """
    return 4 if output_stride == 16 and encoder_depth > 3 else 2
