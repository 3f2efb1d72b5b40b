"""Validated options of DeepLabV3 and DeepLabV3Plus (what ``config.json`` stores).

The fields common to both architectures live in ``DeepLabOptions``; each architecture's class
adds the fields whose defaults differ (output stride, separable ASPP, final upsampling).

Example::

    DeepLabV3PlusOptions.from_options("deeplabv3plus", decoder_atrous_rates=[6, 12, 18])
    # DeepLabV3PlusOptions(decoder_channels=256, decoder_atrous_rates=(6, 12, 18), ...)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from segcore.options import (
    ArchitectureOptions,
    boolean,
    int_one_of,
    int_sequence,
    optional_positive_int,
    positive_int,
    probability,
)

OUTPUT_STRIDES = (8, 16)
DEFAULT_ATROUS_RATES = (12, 24, 36)
_output_stride = int_one_of(
    *OUTPUT_STRIDES,
    explanation="DeepLab keeps the deepest encoder features at 1/8 or 1/16 of the input size "
    "with atrous (dilated) convolution; 8 is finer and slower, 16 coarser and faster.",
)


def _to_tuple(value: Any) -> Any:
    """Any iterable of rates (list, tuple, generator) becomes a tuple; other values pass through
    unchanged so the validator can name them."""
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        return tuple(value)
    return value


@attrs.frozen
class DeepLabOptions(ArchitectureOptions):
    """Options shared by DeepLabV3 and DeepLabV3Plus.

    Attributes:
        decoder_channels: convolution filters of the ASPP module and the decoder.
        decoder_atrous_rates: dilation rates of the three atrous branches of ASPP.
        decoder_aspp_dropout: dropout probability after the ASPP projection, in [0, 1).
    """

    decoder_channels: int = attrs.field(default=256, validator=positive_int)
    decoder_atrous_rates: tuple[int, int, int] = attrs.field(
        default=DEFAULT_ATROUS_RATES, converter=_to_tuple, validator=int_sequence(length=3)
    )
    decoder_aspp_dropout: float = attrs.field(default=0.5, validator=probability)


@attrs.frozen
class DeepLabV3Options(DeepLabOptions):
    """Options of DeepLabV3.

    Attributes:
        encoder_output_stride: reduction of the deepest encoder features, 8 or 16.
        decoder_aspp_separable: depthwise-separable atrous convolutions in ASPP.
        upsampling: final upsampling factor of the segmentation head; ``None`` picks the one
            that gives masks of the input size (``2 ** encoder_depth`` for depth 3, else
            ``encoder_output_stride``).
    """

    encoder_output_stride: int = attrs.field(default=8, validator=_output_stride)
    decoder_aspp_separable: bool = attrs.field(default=False, validator=boolean)
    upsampling: int | None = attrs.field(default=None, validator=optional_positive_int)


@attrs.frozen
class DeepLabV3PlusOptions(DeepLabOptions):
    """Options of DeepLabV3Plus.

    Attributes:
        encoder_output_stride: reduction of the deepest encoder features, 8 or 16.
        decoder_aspp_separable: depthwise-separable atrous convolutions in ASPP.
        upsampling: final upsampling factor of the segmentation head (the decoder works at 1/4
            of the input size, so 4 gives masks of the input size).
    """

    encoder_output_stride: int = attrs.field(default=16, validator=_output_stride)
    decoder_aspp_separable: bool = attrs.field(default=True, validator=boolean)
    upsampling: int = attrs.field(default=4, validator=positive_int)
