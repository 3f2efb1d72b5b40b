"""The FPN decoder: a top-down feature pyramid, per-level segmentation blocks, a merge.

The module tree (``p5``, ``p4/p3/p2.skip_conv``, ``seg_blocks.<i>.block.<j>.block.<k>``,
``merge``, ``dropout``) is SMP's, so an SMP FPN checkpoint loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.errors import InvalidOptionError
from segcore.nn import check_pyramid_decoder_inputs

#: groups of the GroupNorm in every segmentation block (channels must be a multiple of it)
GROUP_NORM_GROUPS = 32
MERGE_POLICIES = ("add", "cat")
#: pyramid levels the decoder reads: the four deepest encoder features
PYRAMID_LEVELS = 4


class Conv3x3GNReLU(nn.Module):
    """3x3 convolution (no bias), GroupNorm with 32 groups, ReLU; then, when ``upsample``, a
    bilinear 2x upsampling (``align_corners=True``).

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)``, or ``2h x 2w`` with
    ``upsample``.
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(GROUP_NORM_GROUPS, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(x)
        if not self.upsample:
            return x
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class FPNBlock(nn.Module):
    """One top-down step: upsample the coarser pyramid level 2x and add the 1x1-projected skip.

    Args:
        pyramid_channels: channels of the pyramid levels.
        skip_channels: channels of the encoder feature joined at this level.
        interpolation_mode: ``F.interpolate`` mode of the 2x upsampling.

    Shapes: ``x`` ``(N, pyramid_channels, h, w)``, ``skip`` ``(N, skip_channels, 2h, 2w)`` ->
    ``(N, pyramid_channels, 2h, 2w)``.
    """

    def __init__(
        self, pyramid_channels: int, skip_channels: int, interpolation_mode: str = "nearest"
    ) -> None:
        super().__init__()
        self.interpolation_mode = interpolation_mode
        self.skip_conv = nn.Conv2d(skip_channels, pyramid_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(x, scale_factor=2.0, mode=self.interpolation_mode)
        return upsampled + self.skip_conv(skip)


class SegmentationBlock(nn.Module):
    """``max(1, n_upsamples)`` ``Conv3x3GNReLU`` layers; each upsamples 2x when
    ``n_upsamples > 0``, so the output is ``2 ** n_upsamples`` times larger than the input.
    """

    def __init__(self, in_channels: int, out_channels: int, n_upsamples: int = 0) -> None:
        super().__init__()
        upsample = n_upsamples > 0
        layers = [Conv3x3GNReLU(in_channels, out_channels, upsample=upsample)]
        layers += [
            Conv3x3GNReLU(out_channels, out_channels, upsample=True)
            for _ in range(n_upsamples - 1)
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class MergeBlock(nn.Module):
    """Merge same-size maps: ``"add"`` sums them, ``"cat"`` concatenates their channels."""

    def __init__(self, policy: str) -> None:
        super().__init__()
        if policy not in MERGE_POLICIES:
            raise InvalidOptionError(
                f"merge policy must be one of {', '.join(map(repr, MERGE_POLICIES))}, "
                f"got {policy!r}"
            )
        self.policy = policy

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        if self.policy == "add":
            return torch.stack(x).sum(dim=0)
        return torch.cat(x, dim=1)


class FPNDecoder(nn.Module):
    """Top-down pyramid over the four deepest encoder features, merged at the finest level.

    Args:
        encoder_channels: the encoder's ``out_channels`` (the input first).
        encoder_depth: stages the encoder returns (3-5); the finest pyramid level is at
            reduction ``2 ** (encoder_depth - 3)``.
        pyramid_channels: channels of the pyramid levels (``p5`` ... ``p2``).
        segmentation_channels: channels of each segmentation block (a multiple of 32).
        dropout: ``Dropout2d`` probability after the merge.
        merge_policy: ``"add"`` or ``"cat"``.
        interpolation_mode: upsampling mode of the top-down pathway.

    Shapes: features as the encoder returns them -> ``(N, out_channels, H / s, W / s)`` with
    ``s = 2 ** (encoder_depth - 3)``; ``out_channels`` is ``segmentation_channels`` for
    ``"add"`` and 4 times that for ``"cat"``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_depth: int = 5,
        pyramid_channels: int = 256,
        segmentation_channels: int = 128,
        dropout: float = 0.2,
        merge_policy: str = "add",
        interpolation_mode: str = "nearest",
    ) -> None:
        super().__init__()
        check_pyramid_decoder_inputs("FPN", encoder_channels, encoder_depth,
                                     reason="four pyramid levels")
        self.out_channels = segmentation_channels * (1 if merge_policy == "add" else 4)
        c2, c3, c4, c5 = encoder_channels[-PYRAMID_LEVELS:]

        self.p5 = nn.Conv2d(c5, pyramid_channels, kernel_size=1)
        self.p4 = FPNBlock(pyramid_channels, c4, interpolation_mode)
        self.p3 = FPNBlock(pyramid_channels, c3, interpolation_mode)
        self.p2 = FPNBlock(pyramid_channels, c2, interpolation_mode)
        # deepest level first: p5 is upsampled 8x, p4 4x, p3 2x, p2 stays
        self.seg_blocks = nn.ModuleList(
            SegmentationBlock(pyramid_channels, segmentation_channels, n_upsamples=count)
            for count in (3, 2, 1, 0)
        )
        self.merge = MergeBlock(merge_policy)
        self.dropout = nn.Dropout2d(p=dropout, inplace=True)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        # the PYRAMID_LEVELS deepest features, indexed one by one (TorchScript compiles this)
        c2, c3, c4, c5 = features[-4], features[-3], features[-2], features[-1]
        p5 = self.p5(c5)
        p4 = self.p4(p5, c4)
        p3 = self.p3(p4, c3)
        p2 = self.p2(p3, c2)
        levels = [p5, p4, p3, p2]
        pyramid = [block(levels[index]) for index, block in enumerate(self.seg_blocks)]
        return self.dropout(self.merge(pyramid))
