"""The DPT decoder: readout of the prefix tokens, reassembly at four scales, residual fusion.

The module tree (``projection_blocks.<i>.project``, ``reassemble_blocks.<i>.{
project_to_out_channel, upsample, project_to_feature_dim}``, ``fusion_blocks.<i>.{
residual_conv_block1, residual_conv_block2, project}`` and the head's ``head.<0-4>``) is SMP's,
so an SMP DPT checkpoint loads unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segcore.errors import EncoderCapabilityError, InvalidOptionError
from segcore.nn import Activation, ActivationOption

#: how the prefix tokens (class / register tokens) join the patch tokens
READOUT_MODES = ("ignore", "add", "cat")
#: the reduction of the finest reassembled map; each deeper one is twice as coarse
FINEST_REDUCTION = 4


class ReadoutConcatBlock(nn.Module):
    """Join the first prefix token to every patch token, then project back (Linear + GELU).

    Without prefix tokens the projection sees the patch tokens alone (``in_features`` is then
    ``embed_dim``, not ``2 * embed_dim``).

    Shapes: ``features`` ``(N, C, h, w)``, ``prefix_tokens`` ``(N, T, C)`` -> ``(N, C, h, w)``.
    """

    def __init__(self, embed_dim: int, has_prefix_tokens: bool) -> None:
        super().__init__()
        joined = 2 * embed_dim if has_prefix_tokens else embed_dim
        self.project = nn.Sequential(nn.Linear(joined, embed_dim), nn.GELU())

    def forward(
        self, features: torch.Tensor, prefix_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, _, height, width = features.shape
        tokens = features.flatten(2).transpose(1, 2)  # (N, h * w, C)
        if prefix_tokens is not None:
            readout = prefix_tokens[:, :1].expand(-1, tokens.shape[1], -1)
            tokens = torch.cat((tokens, readout), dim=2)
        tokens = self.project(tokens)
        return tokens.transpose(1, 2).reshape(batch, -1, height, width)


class ReadoutAddBlock(nn.Module):
    """Add the mean of the prefix tokens to every position (no parameters).

    Shapes: ``features`` ``(N, C, h, w)``, ``prefix_tokens`` ``(N, T, C)`` -> ``(N, C, h, w)``.
    """

    def forward(
        self, features: torch.Tensor, prefix_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        if prefix_tokens is None:
            return features
        return features + prefix_tokens.mean(dim=1)[:, :, None, None]


class ReadoutIgnoreBlock(nn.Module):
    """Drop the prefix tokens: the patch tokens pass unchanged."""

    def forward(
        self, features: torch.Tensor, prefix_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        return features


def _resampler(channels: int, stride: int, target: int) -> nn.Module:
    """The layer that brings a map at reduction ``stride`` to reduction ``target``."""
    if stride == target:
        return nn.Identity()
    if stride > target and stride % target == 0:
        factor = stride // target
        return nn.ConvTranspose2d(channels, channels, kernel_size=factor, stride=factor)
    if target % stride == 0:
        return nn.Conv2d(channels, channels, kernel_size=3, stride=target // stride, padding=1)
    raise EncoderCapabilityError(
        f"the DPT decoder resamples each encoder feature map from its reduction to "
        f"{FINEST_REDUCTION}, {2 * FINEST_REDUCTION}, {4 * FINEST_REDUCTION}...; a map at "
        f"reduction {stride} cannot become reduction {target} by an integer factor. Use an "
        f"encoder whose patch size (or stride) is a power of two, such as a 'patch16' ViT."
    )


class ReassembleBlock(nn.Module):
    """1x1 projection to ``mid_channels``, resampling to the target reduction (transposed
    convolution to enlarge, strided 3x3 convolution to shrink, identity otherwise), 3x3
    projection (no bias) to ``out_channels``.

    Args:
        in_channels: channels of the encoder feature map.
        mid_channels: channels while resampling (``decoder_intermediate_channels[i]``).
        out_channels: channels of the fusion stage (``decoder_fusion_channels``).
        stride: reduction of the encoder feature map (the patch size for a ViT).
        target: reduction of the reassembled map (4, 8, 16, 32...).
    """

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: int, target: int
    ) -> None:
        super().__init__()
        self.project_to_out_channel = nn.Conv2d(in_channels, mid_channels, kernel_size=1)
        self.upsample = _resampler(mid_channels, stride, target)
        self.project_to_feature_dim = nn.Conv2d(
            mid_channels, out_channels, kernel_size=3, padding=1, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project_to_feature_dim(self.upsample(self.project_to_out_channel(x)))


class ResidualConvBlock(nn.Module):
    """Residual unit: ``x + BN(conv(ReLU(BN(conv(ReLU(x))))))`` with 3x3 convolutions."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(feature_dim, feature_dim, kernel_size=3, padding=1, bias=False)
        self.batch_norm_1 = nn.BatchNorm2d(feature_dim)
        self.conv_2 = nn.Conv2d(feature_dim, feature_dim, kernel_size=3, padding=1, bias=False)
        self.batch_norm_2 = nn.BatchNorm2d(feature_dim)
        self.activation = nn.ReLU()  # not in place: the input is the residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.batch_norm_1(self.conv_1(self.activation(x)))
        out = self.batch_norm_2(self.conv_2(self.activation(out)))
        return out + x


class FusionBlock(nn.Module):
    """One fusion stage: residual unit on the reassembled map, plus the coarser fused map,
    a second residual unit, bilinear 2x upsampling (``align_corners=True``), 1x1 projection.

    Shapes: ``feature`` ``(N, C, h, w)``, ``previous`` ``(N, C, h, w)`` or ``None`` ->
    ``(N, C, 2h, 2w)``.
    """

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.residual_conv_block1 = ResidualConvBlock(feature_dim)
        self.residual_conv_block2 = ResidualConvBlock(feature_dim)
        self.project = nn.Conv2d(feature_dim, feature_dim, kernel_size=1)
        # SMP's module tree has this ReLU, but its fusion never applies it; neither does ours
        self.activation = nn.ReLU()

    def forward(
        self, feature: torch.Tensor, previous: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.residual_conv_block1(feature)
        if previous is not None:
            x = x + previous
        x = self.residual_conv_block2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.project(x)


class DPTDecoder(nn.Module):
    """Readout, reassembly and coarse-to-fine fusion of ``len(encoder_out_channels)`` maps.

    Map ``i`` (the shallowest first) is reassembled at reduction ``4 * 2 ** i``; the fusion
    starts from the deepest one and upsamples 2x per stage, so the output is at reduction 2.

    Args:
        encoder_out_channels: channels of the encoder's feature maps (one per sampled block).
        encoder_output_strides: their reductions (the patch size for a ViT).
        encoder_has_prefix_tokens: whether the encoder returns prefix tokens (``"cat"`` then
            projects ``2 * C`` features).
        readout: "cat", "add" or "ignore" (see ``READOUT_MODES``).
        intermediate_channels: channels of each reassembly block while resampling.
        fusion_channels: channels of the fusion stages and of the output.

    Shapes: features ``(N, C_i, H / s_i, W / s_i)`` and prefix tokens ``(N, T, C_i)`` (or
    ``None``) -> ``(N, fusion_channels, H / 2, W / 2)``; ``H`` and ``W`` must be multiples of
    ``4 * 2 ** (n - 1)`` for ``n`` maps, and of every ``s_i``.
    """

    def __init__(
        self,
        encoder_out_channels: Sequence[int] = (768, 768, 768, 768),
        encoder_output_strides: Sequence[int] = (16, 16, 16, 16),
        encoder_has_prefix_tokens: bool = True,
        readout: str = "cat",
        intermediate_channels: Sequence[int] = (256, 512, 1024, 1024),
        fusion_channels: int = 256,
    ) -> None:
        super().__init__()
        count = len(encoder_out_channels)
        if not count == len(encoder_output_strides) == len(intermediate_channels):
            raise InvalidOptionError(
                f"the DPT decoder needs one output stride and one intermediate channel count "
                f"per encoder feature map: got {count} maps, {len(encoder_output_strides)} "
                f"strides and {len(intermediate_channels)} intermediate channel counts "
                f"({tuple(intermediate_channels)})"
            )
        if readout not in READOUT_MODES:
            raise InvalidOptionError(
                f"readout must be one of {', '.join(map(repr, READOUT_MODES))}, got {readout!r}"
            )
        self.readout = readout
        self.out_channels = fusion_channels
        #: what H and W must be multiples of (the coarsest reassembled map is at this reduction)
        self.input_divisor = _lcm(FINEST_REDUCTION * 2 ** (count - 1), *encoder_output_strides)

        def readout_block(channels: int) -> nn.Module:
            if readout == "cat":
                return ReadoutConcatBlock(channels, encoder_has_prefix_tokens)
            return ReadoutAddBlock() if readout == "add" else ReadoutIgnoreBlock()

        self.projection_blocks = nn.ModuleList(
            readout_block(channels) for channels in encoder_out_channels
        )
        self.reassemble_blocks = nn.ModuleList(
            ReassembleBlock(channels, mid, fusion_channels, stride, FINEST_REDUCTION * 2**i)
            for i, (channels, mid, stride) in enumerate(
                zip(encoder_out_channels, intermediate_channels, encoder_output_strides)
            )
        )
        self.fusion_blocks = nn.ModuleList(FusionBlock(fusion_channels) for _ in range(count))

    def forward(
        self,
        features: Sequence[torch.Tensor],
        prefix_tokens: Sequence[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        if prefix_tokens is None:
            prefix_tokens = [None] * len(features)
        maps = [
            reassemble(project(feature, tokens))
            for project, reassemble, feature, tokens in zip(
                self.projection_blocks, self.reassemble_blocks, features, prefix_tokens
            )
        ]
        fused: torch.Tensor | None = None
        for fusion, feature in zip(self.fusion_blocks, reversed(maps)):
            fused = fusion(feature, fused)
        assert fused is not None
        return fused


class DPTSegmentationHead(nn.Module):
    """3x3 conv (no bias) -> BatchNorm -> ReLU -> Dropout(0.1) -> 1x1 conv to the classes,
    then bilinear upsampling (``align_corners=True``) and the activation.

    Shapes: ``(N, in_channels, h, w)`` -> ``(N, out_channels, h * upsampling, w * upsampling)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        activation: ActivationOption = None,
        kernel_size: int = 3,
        upsampling: float = 2.0,
    ) -> None:
        super().__init__()
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                      bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.1),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
        )
        self.activation = Activation(activation)
        self.upsampling_factor = upsampling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        if self.upsampling_factor != 1:
            x = F.interpolate(x, scale_factor=self.upsampling_factor, mode="bilinear",
                              align_corners=True)
        return self.activation(x)


def _lcm(*values: int) -> int:
    return math.lcm(*(int(v) for v in values))
