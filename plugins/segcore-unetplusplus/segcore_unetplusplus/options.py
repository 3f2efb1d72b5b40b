"""``UnetPlusPlusOptions``: the validated decoder options of ``UnetPlusPlus``.

They are what ``save_pretrained`` writes to ``config.json`` (next to the encoder arguments).
"""

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


def _plain_norm(value: Any) -> Any:
    """A dict option is copied into a plain dict (JSON-friendly, not shared with the caller)."""
    return dict(value) if isinstance(value, Mapping) else value


@attrs.frozen
class UnetPlusPlusOptions(ArchitectureOptions):
    """Options of the UNet++ decoder.

    Attributes:
        decoder_channels: output channels of the top row of decoder nodes (the ones that lead
            to the mask), deepest first; one value per encoder stage
            (``len == encoder_depth``). The inner nodes take the channels of the encoder
            stage they sit at.
        decoder_use_norm: normalisation between each convolution and its ReLU: ``True``
            ("batchnorm"), ``False`` (none, the convolutions get a bias), "batchnorm",
            "identity", "layernorm", "instancenorm", "inplace" (needs ``inplace_abn``) or a
            dict ``{"type": ..., **kwargs}`` whose other keys go to the layer.
        decoder_attention_type: ``None`` or ``"scse"``: squeeze-and-excitation attention on
            each node's fused input and on its output.
        decoder_interpolation: how each node doubles the size of the deeper map: "nearest",
            "bilinear", "bicubic", "area" or "nearest-exact".
    """

    decoder_channels: tuple[int, ...] = attrs.field(
        default=DEFAULT_DECODER_CHANNELS, converter=to_tuple, validator=int_sequence()
    )
    decoder_use_norm: NormOption = attrs.field(
        default="batchnorm", converter=_plain_norm, validator=norm_option
    )
    decoder_attention_type: str | None = attrs.field(
        default=None, validator=one_of(*ATTENTION_TYPES)
    )
    decoder_interpolation: str = attrs.field(default="nearest", validator=interpolation_mode)

    def check(self, encoder_depth: int) -> None:
        """One top-row node per encoder stage; the normalisation must be buildable."""
        count = len(self.decoder_channels)
        if count != encoder_depth:
            suggestion = DEFAULT_DECODER_CHANNELS[:encoder_depth]
            keep = f", or encoder_depth={count} to keep these channels" if 3 <= count <= 5 else ""
            raise InvalidOptionError(
                f"decoder_channels has {count} values but encoder_depth={encoder_depth} needs "
                f"{encoder_depth} (one per encoder stage): use {suggestion}{keep}"
            )
        try:
            # One small layer, built before the encoder is (or its weights are downloaded):
            # "inplace" without inplace_abn, or a keyword the layer refuses, fails here.
            make_norm(self.decoder_use_norm, self.decoder_channels[-1])
        except TypeError as error:
            raise InvalidOptionError(
                f"decoder_use_norm={self.decoder_use_norm!r} cannot build a normalisation "
                f"layer: {error}. Pass only keyword arguments that layer accepts."
            ) from None
