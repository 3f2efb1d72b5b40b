"""``LinknetOptions``: the validated decoder options of ``Linknet`` (stored in ``config.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from segcore.errors import InvalidOptionError
from segcore.nn import NormOption, make_norm
from segcore.options import ArchitectureOptions, norm_option


def _norm_converter(value: Any) -> Any:
    """Dicts are copied into plain dicts (JSON-friendly, not shared with the caller)."""
    if isinstance(value, Mapping):
        return dict(value)
    return value


@attrs.frozen
class LinknetOptions(ArchitectureOptions):
    """Options of the Linknet decoder.

    Attributes:
        decoder_use_norm: normalisation after every convolution of the decoder blocks (the two
            1x1 convolutions and the transposed convolution): ``True`` ("batchnorm"),
            ``False`` (none; the 1x1 convolutions then get a bias), "batchnorm", "identity",
            "layernorm", "instancenorm", "inplace" (needs ``inplace_abn``) or a dict
            ``{"type": ..., **kwargs}`` whose keywords go to the layer.
    """

    decoder_use_norm: NormOption = attrs.field(
        default="batchnorm", converter=_norm_converter, validator=norm_option
    )

    def check(self, encoder_depth: int) -> None:
        """The normalisation must be buildable (checked before the encoder is built)."""
        try:
            # One small layer: fails early for "inplace" without inplace_abn and for keyword
            # arguments the layer refuses.
            make_norm(self.decoder_use_norm, 8)
        except TypeError as error:
            raise InvalidOptionError(
                f"decoder_use_norm={self.decoder_use_norm!r} cannot build a normalisation "
                f"layer: {error}. Pass only keyword arguments that layer accepts."
            ) from None
