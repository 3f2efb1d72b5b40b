"""``UnetPlusPlusOptions``: the validated decoder options of ``UnetPlusPlus``.

They are what ``save_pretrained`` writes to ``config.json`` (next to the encoder arguments).
"""

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
        default="batchnorm", converter=plain_dict, validator=norm_option
    )
    decoder_attention_type: str | None = attrs.field(
        default=None, validator=one_of(*ATTENTION_TYPES)
    )
    decoder_interpolation: str = attrs.field(default="nearest", validator=interpolation_mode)

    def check(self, encoder_depth: int) -> None:
        """One top-row node per encoder stage; the normalisation must be buildable."""
        check_channels_per_stage(self.decoder_channels, encoder_depth, DEFAULT_DECODER_CHANNELS,
                                 " (one per encoder stage)")
        check_norm_buildable(self.decoder_use_norm, self.decoder_channels[-1])
