"""``PSPNetOptions``: the validated decoder options of ``PSPNet`` (what ``config.json`` stores)."""

from __future__ import annotations

import attrs

from segcore.nn import NormOption
from segcore.options import (
    ArchitectureOptions,
    check_norm_buildable,
    norm_option,
    plain_dict,
    positive_int,
    probability,
)


@attrs.frozen
class PSPNetOptions(ArchitectureOptions):
    """Options of the PSPNet decoder and its segmentation head.

    Attributes:
        psp_out_channels: channels of the decoder output (the 1x1 fusion after pyramid
            pooling); a positive int.
        decoder_use_norm: normalisation between each convolution of the decoder and its ReLU:
            ``True`` ("batchnorm"), ``False`` (none, the convolutions get a bias),
            "batchnorm", "identity", "layernorm", "instancenorm", "inplace" (needs
            ``inplace_abn``) or a dict ``{"type": ..., **kwargs}``. The 1x1 pyramid level is
            never normalised.
        psp_dropout: probability of the spatial dropout (``Dropout2d``, whole channels) after
            the fusion, in [0, 1); 0 disables it.
        upsampling: factor of the bilinear upsampling in the segmentation head, a positive
            int; masks have the input size when it equals ``2 ** encoder_depth`` (8 for the
            default depth 3).
    """

    psp_out_channels: int = attrs.field(default=512, validator=positive_int)
    decoder_use_norm: NormOption = attrs.field(
        default="batchnorm", converter=plain_dict, validator=norm_option
    )
    psp_dropout: float = attrs.field(default=0.2, validator=probability)
    upsampling: int = attrs.field(default=8, validator=positive_int)

    def check(self, encoder_depth: int) -> None:
        """The normalisation must be buildable (checked before the encoder is built)."""
        check_norm_buildable(self.decoder_use_norm, self.psp_out_channels)
