"""``PANOptions``: the validated decoder options of ``PAN`` (what ``config.json`` stores)."""

from __future__ import annotations

import attrs

from segcore.options import ArchitectureOptions, int_one_of, interpolation_mode, positive_int

#: the reductions of the deepest encoder features PAN accepts (16: the last stage is dilated)
OUTPUT_STRIDES = (16, 32)
_output_stride = int_one_of(
    *OUTPUT_STRIDES,
    explanation="PAN reads the deepest encoder features at 1/16 of the input size (16: the "
    "last encoder stage is dilated, it needs an encoder that supports dilation) or 1/32 (32: "
    "no dilation, any encoder).",
)


@attrs.frozen
class PANOptions(ArchitectureOptions):
    """Options of the PAN decoder and its segmentation head.

    Attributes:
        encoder_output_stride: reduction of the deepest encoder features, 16 or 32. 16 dilates
            the last encoder stage (the encoder must support dilation); 32 uses the encoder as
            it is. Inputs are padded to a multiple of it, and both height and width must be at
            least 8 times it (the attention block pools the deepest features three times).
        decoder_channels: channels of the Feature Pyramid Attention block and of the Global
            Attention Upsample blocks (the segmentation head's input); a positive int.
        decoder_interpolation: resizing mode of the Global Attention Upsample blocks:
            "nearest", "bilinear" (corners aligned), "bicubic", "area" or "nearest-exact". The
            Feature Pyramid Attention block always resizes bilinearly, as in SMP.
        upsampling: factor of the bilinear upsampling in the segmentation head; the decoder
            output is at 1/4 of the input size at every encoder depth, so 4 gives masks of the
            input size.
    """

    encoder_output_stride: int = attrs.field(default=16, validator=_output_stride)
    decoder_channels: int = attrs.field(default=32, validator=positive_int)
    decoder_interpolation: str = attrs.field(default="bilinear", validator=interpolation_mode)
    upsampling: int = attrs.field(default=4, validator=positive_int)
