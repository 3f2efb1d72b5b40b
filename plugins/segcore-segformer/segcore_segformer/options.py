"""``SegformerOptions``: the validated decoder options of ``Segformer`` (what ``config.json``
stores)."""

from __future__ import annotations

import attrs

from segcore.options import ArchitectureOptions, positive_int


@attrs.frozen
class SegformerOptions(ArchitectureOptions):
    """Options of the Segformer decoder and its segmentation head.

    Attributes:
        decoder_segmentation_channels: channels of the per-stage linear projections and of
            the 1x1 conv-BatchNorm-ReLU that fuses them (the head's input); a positive int.
        upsampling: factor of the bilinear upsampling in the segmentation head, a positive
            int; the decoder's output is at 1/4 of the input size at every encoder depth, so
            4 gives masks of the input size.
    """

    decoder_segmentation_channels: int = attrs.field(default=256, validator=positive_int)
    upsampling: int = attrs.field(default=4, validator=positive_int)
