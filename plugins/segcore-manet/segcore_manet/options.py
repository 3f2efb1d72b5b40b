"""``MAnetOptions``: the validated decoder options of ``MAnet`` (what ``config.json`` stores)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from segcore.errors import InvalidOptionError
from segcore.nn import NormOption, make_norm
from segcore.options import (
    ArchitectureOptions,
    int_sequence,
    interpolation_mode,
    norm_option,
    positive_int,
    to_tuple,
)

DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)
DEFAULT_PAB_CHANNELS = 64


def _plain_norm(value: Any) -> Any:
    """A norm dict is copied into a plain dict (JSON-friendly, not shared with the caller)."""
    return dict(value) if isinstance(value, Mapping) else value


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
        default="batchnorm", converter=_plain_norm, validator=norm_option
    )
    decoder_pab_channels: int = attrs.field(default=DEFAULT_PAB_CHANNELS, validator=positive_int)
    decoder_interpolation: str = attrs.field(default="nearest", validator=interpolation_mode)

    def check(self, encoder_depth: int) -> None:
        """One decoder block per encoder stage; the normalisation must be buildable."""
        count = len(self.decoder_channels)
        if count != encoder_depth:
            suggestion = DEFAULT_DECODER_CHANNELS[:encoder_depth]
            keep = f", or encoder_depth={count} to keep these channels" if 3 <= count <= 5 else ""
            raise InvalidOptionError(
                f"decoder_channels has {count} values but encoder_depth={encoder_depth} needs "
                f"{encoder_depth} (one per decoder block): use {suggestion}{keep}"
            )
        try:
            # One small layer, built before the encoder (which may download weights): fails
            # early for "inplace" without inplace_abn and for keywords the layer refuses.
            make_norm(self.decoder_use_norm, self.decoder_channels[-1])
        except TypeError as error:
            raise InvalidOptionError(
                f"decoder_use_norm={self.decoder_use_norm!r} cannot build a normalisation "
                f"layer: {error}. Pass only keyword arguments that layer accepts."
            ) from None
