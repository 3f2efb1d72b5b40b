"""``UnetOptions``: the validated decoder options of ``Unet`` (what ``config.json`` stores)."""

from __future__ import annotations

import attrs

from segcore.nn import ATTENTION_TYPES, NormOption
from segcore.options import (
    ArchitectureOptions,
    check_channels_per_stage,
    check_norm_buildable,
    int_sequence,
    interpolation_mode,
    norm_option,
    one_of,
    plain_dict,
    to_tuple,
)

DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)


@attrs.frozen
class UnetOptions(ArchitectureOptions):
    """Options of the Unet decoder.

    Attributes:
        decoder_channels: output channels of each decoder block, deepest first; one value per
            encoder stage (``len == encoder_depth``).
        decoder_use_norm: normalisation between each convolution and its ReLU: ``True``
            ("batchnorm"), ``False`` (none, the convolutions get a bias), "batchnorm",
            "identity", "layernorm", "instancenorm", "inplace" (needs ``inplace_abn``) or a
            dict ``{"type": ..., **kwargs}``.
        decoder_attention_type: ``None`` or ``"scse"`` (attention after each fusion).
        decoder_interpolation: upsampling mode of each block: "nearest", "bilinear",
            "bicubic", "area" or "nearest-exact".
    """

    decoder_channels: tuple[int, ...] = attrs.field(
        default=DEFAULT_DECODER_CHANNELS, converter=to_tuple, validator=int_sequence()
    )
    decoder_use_norm: NormOption = attrs.field(
        default="batchnorm", converter=plain_dict, validator=norm_option
    )
    decoder_attention_type: str | None = attrs.field(
        default=None, validator=one_of(*ATTENTION_TYPES)
    )
    decoder_interpolation: str = attrs.field(default="nearest", validator=interpolation_mode)

    def check(self, encoder_depth: int) -> None:
        """One decoder block per encoder stage; the normalisation must be buildable."""
        check_channels_per_stage(self.decoder_channels, encoder_depth, DEFAULT_DECODER_CHANNELS)
        check_norm_buildable(self.decoder_use_norm, self.decoder_channels[-1])
