"""The UNet++ decoder: a triangle of decoder nodes joined by nested, dense skip pathways.

Node ``x_{row}_{column}`` sits at the resolution of encoder stage ``column + 1`` (counted from
the deepest). It doubles the size of the node to its left in the same row (or, on the
diagonal, of the encoder feature) and fuses it with every node below it in the same column
plus that column's encoder feature. The module tree (``center``, ``blocks.x_<row>_<column>``
with ``conv1``, ``attention1``, ``conv2``, ``attention2``) is SMP's, so an SMP UnetPlusPlus
checkpoint loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.nn import (
    DoubleConv2dReLU,
    NormOption,
    SkipAttentionBlock,
    center_block_or_identity,
    check_decoder_channels_per_stage,
)


class UnetPlusPlusDecoderBlock(SkipAttentionBlock):
    """One node: double the size, concatenate the skips, attention, conv, conv, attention.

    The arguments and layers are ``segcore.nn.SkipAttentionBlock``'s: ``skip_channels`` counts
    all skips together (0 for the last node, which has none); ``out_channels=0`` makes an
    empty node, as happens where an encoder has a stage without channels (timm
    transformer-style encoders start at reduction 4). ``forward(x, skip)``: ``x``
    ``(N, in_channels, h, w)``, skip ``(N, skip_channels, 2h, 2w)`` ->
    ``(N, out_channels, 2h, 2w)``.
    """

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode=self.interpolation_mode)
        return self.fuse(x, skip)


class UnetPlusPlusCenterBlock(DoubleConv2dReLU):
    """Two conv-norm-ReLU layers for the deepest features (children ``0`` and ``1``).

    Built for encoders whose deepest feature comes straight from a pooling layer (VGG), as SMP
    does; SMP's decoder never applies it, so neither does ours (see ``UnetPlusPlusDecoder``).
    """


def node_channels(
    encoder_channels: Sequence[int], decoder_channels: Sequence[int]
) -> dict[str, tuple[int, int, int]]:
    """``(in, skip, out)`` channels of every node, keyed ``x_<row>_<column>``, in SMP's order.

    Column ``c`` (``0`` is the deepest) has rows ``0..c``. Row 0 produces
    ``decoder_channels[c]``; a deeper row produces the channels of the encoder stage at its
    resolution and takes the channels of the stage one level deeper. A node's skip is every
    node below it in its column plus the encoder stage, each as wide as that stage.
    """
    stages = list(encoder_channels[1:])[::-1]  # deepest first, without the input
    skips = [*stages[1:], 0]  # the encoder stage each column fuses (none for the last)
    row0_inputs = [stages[0], *decoder_channels[:-1]]
    columns = len(decoder_channels) - 1
    nodes = {}
    for column in range(columns):
        for row in range(column + 1):
            skip = skips[column] * (column + 1 - row)
            if row == 0:
                nodes[f"x_0_{column}"] = (row0_inputs[column], skip, decoder_channels[column])
            else:
                nodes[f"x_{row}_{column}"] = (skips[column - 1], skip, skips[column])
    nodes[f"x_0_{columns}"] = (row0_inputs[columns], 0, decoder_channels[columns])
    return nodes


class UnetPlusPlusDecoder(nn.Module):
    """The UNet++ decoder (https://arxiv.org/abs/1807.10165).

    Args:
        encoder_channels: ``encoder.out_channels`` (``depth + 1`` values, the input first).
        decoder_channels: output channels of the top row of nodes, deepest first (``depth``
            values); the last one is the decoder's output.
        use_norm: normalisation of the convolutions.
        attention_type: ``None`` or ``"scse"``.
        add_center_block: build a ``UnetPlusPlusCenterBlock`` (``center``) as SMP does for VGG
            encoders. Like SMP's, it is not applied; it is frozen so that no trainable
            parameter goes unused.
        interpolation_mode: upsampling mode of the nodes.

    ``forward(features)`` takes the encoder's ``depth + 1`` maps (each half the size of the
    one before) and returns ``(N, decoder_channels[-1], H, W)`` at the input's size.

    Example::

        decoder = UnetPlusPlusDecoder((3, 8, 16, 24), decoder_channels=(32, 16, 8))
        features = [torch.rand(1, 3, 64, 64), torch.rand(1, 8, 32, 32),
                    torch.rand(1, 16, 16, 16), torch.rand(1, 24, 8, 8)]
        decoder(features).shape   # (1, 8, 64, 64)
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        use_norm: NormOption = "batchnorm",
        attention_type: str | None = None,
        add_center_block: bool = False,
        interpolation_mode: str = "nearest",
    ) -> None:
        super().__init__()
        depth = check_decoder_channels_per_stage(encoder_channels, decoder_channels)
        self.center = center_block_or_identity(
            add_center_block, encoder_channels[-1], use_norm, UnetPlusPlusCenterBlock
        )
        # SMP builds the center block but its forward never uses it: keep it for checkpoints
        # (and the same outputs), frozen so that DistributedDataParallel finds no unused
        # trainable parameter.
        self.center.requires_grad_(False)
        self.blocks = nn.ModuleDict(
            {
                key: UnetPlusPlusDecoderBlock(
                    block_in, block_skip, block_out, use_norm=use_norm,
                    attention_type=attention_type, interpolation_mode=interpolation_mode,
                )
                for key, (block_in, block_skip, block_out)
                in node_channels(encoder_channels, decoder_channels).items()
            }
        )
        #: columns with an encoder skip; the last node (``x_0_<columns>``) has none
        self.columns = depth - 1
        self.blocks[f"x_0_{self.columns}"].freeze_unfused_attention()  # it gets no skip
        self.out_channels = decoder_channels[-1]

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        stages = list(features[1:])[::-1]  # deepest first; the input itself is not a skip
        # row_outputs[row]: the rightmost node computed so far in that row
        row_outputs: list[torch.Tensor] = []
        for column in range(self.columns):
            below: list[torch.Tensor] = []  # this column's nodes under the current one
            for row in range(column, -1, -1):
                x = stages[column] if row == column else row_outputs[row]
                skip = torch.cat([*below, stages[column + 1]], dim=1)
                node = self.blocks[f"x_{row}_{column}"](x, skip)
                below.insert(0, node)
                if row == column:
                    row_outputs.append(node)
                else:
                    row_outputs[row] = node
        x = row_outputs[0] if row_outputs else stages[0]
        return self.blocks[f"x_0_{self.columns}"](x)
