"""``ExampleFPNOptions``: the validated options of ``ExampleFPN`` (what ``config.json`` stores)."""

from __future__ import annotations

import attrs

from segcore.errors import InvalidOptionError
from segcore.options import (
    ArchitectureOptions,
    one_of,
    optional_positive_int,
    positive_int,
    probability,
)


@attrs.frozen
class ExampleFPNOptions(ArchitectureOptions):
    """Options of the ExampleFPN decoder.

    Attributes:
        pyramid_channels: channels of every pyramid level (output of the lateral 1x1 convs).
        pyramid_levels: how many of the deepest encoder stages feed the pyramid; ``None``: all.
        decoder_dropout: probability of the ``Dropout2d`` before the segmentation head.
        encoder_output_stride: 32, or 16 / 8 to dilate the encoder's deepest stages (needs an
            encoder that supports dilation).
    """

    pyramid_channels: int = attrs.field(default=64, validator=positive_int)
    pyramid_levels: int | None = attrs.field(default=None, validator=optional_positive_int)
    decoder_dropout: float = attrs.field(default=0.0, validator=probability)
    encoder_output_stride: int = attrs.field(default=32, validator=one_of(8, 16, 32))

    def check(self, encoder_depth: int) -> None:
        """Cross-field check: the pyramid cannot use more stages than the encoder returns."""
        if self.pyramid_levels is not None and self.pyramid_levels > encoder_depth:
            raise InvalidOptionError(
                f"pyramid_levels={self.pyramid_levels} is more than the {encoder_depth} stages "
                f"of the encoder (encoder_depth={encoder_depth}): use pyramid_levels <= "
                f"{encoder_depth}, or None for all of them"
            )
