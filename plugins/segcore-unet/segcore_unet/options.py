"""``UnetOptions``: the validated decoder options of ``Unet`` (what ``config.json`` stores)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from segcore.errors import InvalidOptionError
from segcore.nn import ATTENTION_TYPES, NormOption, make_norm
from segcore.options import (
    ArchitectureOptions,
    int_sequence,
    interpolation_mode,
    norm_option,
    one_of,
    to_tuple,
)

DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)


def _norm_converter(value: Any) -> Any:
    """Dicts are copied into plain dicts (JSON-friendly, not shared with the caller)."""
    if isinstance(value, Mapping):
        return dict(value)
    return value


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
        default="batchnorm", converter=_norm_converter, validator=norm_option
    )
    decoder_attention_type: str | None = attrs.field(
        default=None, validator=one_of(*ATTENTION_TYPES)
    )
    decoder_interpolation: str = attrs.field(default="nearest", validator=interpolation_mode)

    def check(self, encoder_depth: int) -> None:
        """One decoder block per encoder stage; the normalisation must be buildable."""
        count = len(self.decoder_channels)
        if count != encoder_depth:
            suggestion = DEFAULT_DECODER_CHANNELS[:encoder_depth]
            other = (
                f", or encoder_depth={count} to keep these channels" if 3 <= count <= 5 else ""
            )
            raise InvalidOptionError(
                f"decoder_channels has {count} values but encoder_depth={encoder_depth} needs "
                f"{encoder_depth}: use {suggestion}{other}"
            )
        try:
            # Builds one small layer: fails early (before the encoder is built or downloaded)
            # for "inplace" without inplace_abn and for keyword arguments the layer refuses.
            make_norm(self.decoder_use_norm, self.decoder_channels[-1])
        except TypeError as error:
            raise InvalidOptionError(
                f"decoder_use_norm={self.decoder_use_norm!r} cannot build a normalisation "
                f"layer: {error}. Pass only keyword arguments that layer accepts."
            ) from None
