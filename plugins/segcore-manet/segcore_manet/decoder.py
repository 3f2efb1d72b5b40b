"""The MAnet decoder: position-wise attention on the deepest features, then fusion blocks.

The module tree is SMP 0.6.0's, so an SMP MAnet checkpoint loads unchanged::

    center                 PABBlock: top_conv, center_conv, bottom_conv, map_softmax, out_conv
    blocks.<i>             MFABBlock (a block with an encoder skip): hl_conv.0/1, SE_ll, SE_hl,
                           conv1, conv2
    blocks.<last>          MAnetDecoderBlock (no skip, or a skip without channels): conv1, conv2

Every block upsamples by exactly 2, so the input height and width must be divisible by the
encoder's output stride (``2 ** encoder_depth``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.nn import Conv2dReLU, NormOption, skip_decoder_block_channels

#: channel reduction of the squeeze-and-excitation gates of the fusion blocks (SMP's value)
SE_REDUCTION = 16


class PABBlock(nn.Module):
    """Position-wise attention block: every position attends to every other position.

    Two 1x1 convolutions (``center_conv`` for the queries, ``top_conv`` for the keys, both
    with ``pab_channels`` channels) score each pair of positions; one softmax normalises all
    ``(H*W)**2`` scores of an image together; the scores weight the values of a 3x3
    convolution (``bottom_conv``); the result is added to the input and goes through a 3x3
    convolution (``out_conv``).

    As in SMP, the attended values, computed as ``(H*W, C)`` rows, are read back as a
    ``(C, H, W)`` map without a transpose; this keeps SMP checkpoints giving SMP's outputs.

    Shapes: ``(N, in_channels, H, W)`` -> ``(N, in_channels, H, W)``; memory grows with
    ``(H*W)**2``.
    """

    def __init__(self, in_channels: int, pab_channels: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.pab_channels = pab_channels
        self.top_conv = nn.Conv2d(in_channels, pab_channels, kernel_size=1)
        self.center_conv = nn.Conv2d(in_channels, pab_channels, kernel_size=1)
        self.bottom_conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.map_softmax = nn.Softmax(dim=1)
        self.out_conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        keys = self.top_conv(x).flatten(2)  # (N, P, HW)
        queries = self.center_conv(x).flatten(2).transpose(1, 2)  # (N, HW, P)
        values = self.bottom_conv(x).flatten(2).transpose(1, 2)  # (N, HW, C)
        scores = torch.bmm(queries, keys)  # (N, HW, HW)
        weights = self.map_softmax(scores.reshape(batch, -1)).reshape(scores.shape)
        attended = torch.bmm(weights, values)  # (N, HW, C)
        x = x + attended.reshape(batch, channels, height, width)
        return self.out_conv(x)


def _se_gate(channels: int, hidden: int) -> nn.Sequential:
    """Squeeze-and-excitation gate: global pooling, 1x1 conv, ReLU, 1x1 conv, sigmoid."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(channels, hidden, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, channels, 1),
        nn.Sigmoid(),
    )


class MFABBlock(nn.Module):
    """Multi-scale fusion attention block: fuse the deeper map with an encoder skip.

    The deeper map goes through a 3x3 and a 1x1 conv-norm-ReLU (``hl_conv``) to the skip's
    channel count and is upsampled by 2. Two squeeze-and-excitation gates, one on that map
    (``SE_hl``) and one on the skip (``SE_ll``), are added and scale the upsampled map's
    channels; it is concatenated with the skip and goes through two 3x3 conv-norm-ReLU layers.

    Args:
        in_channels: channels of the deeper map.
        skip_channels: channels of the encoder skip (positive).
        out_channels: channels of the block's output.
        interpolation_mode: ``F.interpolate`` mode of the 2x upsampling.
        use_norm: normalisation of the convolutions (see ``segcore.nn.Conv2dReLU``).
        reduction: channel reduction of the gates (at least 1 hidden channel).

    Shapes: ``x`` ``(N, in_channels, h, w)``, ``skip`` ``(N, skip_channels, 2h, 2w)`` ->
    ``(N, out_channels, 2h, 2w)``.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        interpolation_mode: str = "nearest",
        use_norm: NormOption = "batchnorm",
        reduction: int = SE_REDUCTION,
    ) -> None:
        super().__init__()
        self.hl_conv = nn.Sequential(
            Conv2dReLU(in_channels, in_channels, 3, padding=1, use_norm=use_norm),
            Conv2dReLU(in_channels, skip_channels, 1, use_norm=use_norm),
        )
        hidden = max(1, skip_channels // reduction)
        self.SE_ll = _se_gate(skip_channels, hidden)
        self.SE_hl = _se_gate(skip_channels, hidden)
        self.conv1 = Conv2dReLU(2 * skip_channels, out_channels, 3, padding=1, use_norm=use_norm)
        self.conv2 = Conv2dReLU(out_channels, out_channels, 3, padding=1, use_norm=use_norm)
        self.interpolation_mode = interpolation_mode

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        # ``skip`` is optional only in the signature, which the decoder's loop over both block
        # kinds shares (TorchScript types it); this block always gets one.
        if skip is None:
            raise ValueError("MFABBlock fuses an encoder skip: call it with one")
        x = self.hl_conv(x)
        x = F.interpolate(x, scale_factor=2.0, mode=self.interpolation_mode)
        gate = self.SE_hl(x) + self.SE_ll(skip)
        x = torch.cat([x * gate, skip], dim=1)
        return self.conv2(self.conv1(x))


class MAnetDecoderBlock(nn.Module):
    """Plain block: upsample by 2, concatenate the skip (if any), two 3x3 conv-norm-ReLU layers.

    Used where there is no skip with channels (the last block, at the input's size).

    Shapes: ``x`` ``(N, in_channels, h, w)`` -> ``(N, out_channels, 2h, 2w)``.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        interpolation_mode: str = "nearest",
        use_norm: NormOption = "batchnorm",
    ) -> None:
        super().__init__()
        self.conv1 = Conv2dReLU(
            in_channels + skip_channels, out_channels, 3, padding=1, use_norm=use_norm
        )
        self.conv2 = Conv2dReLU(out_channels, out_channels, 3, padding=1, use_norm=use_norm)
        self.interpolation_mode = interpolation_mode

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode=self.interpolation_mode)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class MAnetDecoder(nn.Module):
    """The MAnet decoder: a ``PABBlock`` on the deepest features, then one block per stage.

    Args:
        encoder_channels: ``encoder.out_channels`` (``depth + 1`` values, the input first).
        decoder_channels: output channels of each block, deepest first (``depth`` values).
        use_norm: normalisation of the blocks' convolutions.
        pab_channels: channels of the attention scores' projections in the ``PABBlock``.
        interpolation_mode: upsampling mode of the blocks.
        reduction: channel reduction of the fusion blocks' gates.

    ``forward(features)`` takes the encoder's ``depth + 1`` maps (sizes halving from the
    input's) and returns ``(N, decoder_channels[-1], H, W)`` at the input's size.

    Example::

        decoder = MAnetDecoder((3, 8, 16, 24), decoder_channels=(32, 16, 8), pab_channels=4)
        features = [torch.rand(1, 3, 64, 64), torch.rand(1, 8, 32, 32),
                    torch.rand(1, 16, 16, 16), torch.rand(1, 24, 8, 8)]
        decoder(features).shape   # (1, 8, 64, 64)
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        use_norm: NormOption = "batchnorm",
        pab_channels: int = 64,
        interpolation_mode: str = "nearest",
        reduction: int = SE_REDUCTION,
    ) -> None:
        super().__init__()
        block_channels = skip_decoder_block_channels(encoder_channels, decoder_channels)
        self.center = PABBlock(encoder_channels[-1], pab_channels=pab_channels)
        blocks: list[nn.Module] = []
        for block_in, block_skip, block_out in block_channels:
            if block_skip > 0:
                blocks.append(MFABBlock(block_in, block_skip, block_out,
                                        interpolation_mode=interpolation_mode,
                                        use_norm=use_norm, reduction=reduction))
            else:
                blocks.append(MAnetDecoderBlock(block_in, block_skip, block_out,
                                                interpolation_mode=interpolation_mode,
                                                use_norm=use_norm))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        stages = features[1:][::-1]
        skips = stages[1:]
        x = self.center(stages[0])
        for index, block in enumerate(self.blocks):
            skip = skips[index] if index < len(skips) else None
            x = block(x, skip)
        return x
