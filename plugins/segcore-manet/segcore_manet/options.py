"""``MAnetOptions``: the validated decoder options of ``MAnet`` (what ``config.json`` stores)."""

from __future__ import annotations

import attrs

from segcore.nn import NormOption
from segcore.options import (
    ArchitectureOptions,
    check_channels_per_stage,
    check_norm_buildable,
    int_sequence,
    interpolation_mode,
    norm_option,
    plain_dict,
    positive_int,
    to_tuple,
)

DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)
DEFAULT_PAB_CHANNELS = 64


@attrs.frozen
class MAnetOptions(ArchitectureOptions):
    """Options of the MAnet decoder.

    Attributes:
        decoder_channels: output channels of each decoder block, deepest first; one value per
            encoder stage (``len == encoder_depth``). The last value is the input channel
            count of the segmentation head.
        decoder_use_norm: normalisation between each decoder convolution and its ReLU:
            ``True`` ("batchnorm"), ``False`` (none; the convolutions get a bias),
            "batchnorm", "identity", "layernorm", "instancenorm", "inplace" (needs
            ``inplace_abn``) or a dict ``{"type": ..., **kwargs}``.
        decoder_pab_channels: channels of the query and key projections (1x1 convolutions) of
            the position-wise attention block on the deepest encoder features; a positive int.
        decoder_interpolation: how each decoder block upsamples by 2: "nearest", "bilinear",
            "bicubic", "area" or "nearest-exact".
    """

    decoder_channels: tuple[int, ...] = attrs.field(
        default=DEFAULT_DECODER_CHANNELS, converter=to_tuple, validator=int_sequence()
    )
    decoder_use_norm: NormOption = attrs.field(
        default="batchnorm", converter=plain_dict, validator=norm_option
    )
    decoder_pab_channels: int = attrs.field(default=DEFAULT_PAB_CHANNELS, validator=positive_int)
    decoder_interpolation: str = attrs.field(default="nearest", validator=interpolation_mode)

    def check(self, encoder_depth: int) -> None:
        """One decoder block per encoder stage; the normalisation must be buildable."""
        check_channels_per_stage(self.decoder_channels, encoder_depth, DEFAULT_DECODER_CHANNELS,
                                 " (one per decoder block)")
        check_norm_buildable(self.decoder_use_norm, self.decoder_channels[-1])
