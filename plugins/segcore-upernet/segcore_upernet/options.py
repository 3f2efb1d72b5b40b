"""``UPerNetOptions``: the validated decoder options of ``UPerNet`` (what ``config.json``
stores)."""

from __future__ import annotations

from typing import Any

import attrs

from segcore.errors import InvalidOptionError
from segcore.nn import NormOption, norm_params
from segcore.options import (
    ArchitectureOptions,
    check_norm_buildable,
    norm_option,
    plain_dict,
    positive_int,
)


def _decoder_norm(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A ``use_norm`` value, except instance normalisation: the 1x1 level of the pyramid
    pooling has a single value per channel and image, which InstanceNorm cannot normalise."""
    norm_option(instance, attribute, value)
    if norm_params(value)["type"] == "instancenorm":
        raise InvalidOptionError(
            f"{attribute.name}={value!r} cannot work in UPerNet: its pyramid pooling module "
            f"pools the deepest features to a single 1x1 value per channel, which instance "
            f"normalisation cannot normalise (training fails for every input). Use "
            f"'batchnorm' (default), 'layernorm', 'identity'/False, 'inplace' or a dict of one "
            f"of these."
        )


@attrs.frozen
class UPerNetOptions(ArchitectureOptions):
    """Options of the UPerNet decoder and its segmentation head.

    Attributes:
        decoder_channels: channels of the pyramid pooling output, of every feature-pyramid
            level and of the fused decoder output (the head's input); a positive int.
        decoder_use_norm: normalisation between each decoder convolution and its ReLU:
            ``True`` ("batchnorm"), ``False`` (none, the convolutions get a bias),
            "batchnorm", "identity", "layernorm", "inplace" (needs ``inplace_abn``) or a dict
            ``{"type": ..., **kwargs}``. "instancenorm" is refused (the 1x1 pooling level
            cannot be instance-normalised). The fusion inside the pyramid pooling module
            always uses BatchNorm, as in SMP.
        upsampling: factor of the bilinear upsampling in the segmentation head; the decoder
            output is at 1/4 of the input size at every ``encoder_depth``, so 4 gives masks
            of the input size.
    """

    decoder_channels: int = attrs.field(default=256, validator=positive_int)
    decoder_use_norm: NormOption = attrs.field(
        default="batchnorm", converter=plain_dict, validator=_decoder_norm
    )
    upsampling: int = attrs.field(default=4, validator=positive_int)

    def check(self, encoder_depth: int) -> None:
        """The normalisation must be buildable (before the encoder is built or downloaded)."""
        check_norm_buildable(self.decoder_use_norm, self.decoder_channels)
