"""``LinknetOptions``: the validated decoder options of ``Linknet`` (stored in ``config.json``)."""

from __future__ import annotations

import attrs

from segcore.nn import NormOption
from segcore.options import ArchitectureOptions, check_norm_buildable, norm_option, plain_dict


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
        default="batchnorm", converter=plain_dict, validator=norm_option
    )

    def check(self, encoder_depth: int) -> None:
        """The normalisation must be buildable (checked before the encoder is built)."""
        check_norm_buildable(self.decoder_use_norm, 8)
