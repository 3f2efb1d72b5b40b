"""``DPTOptions``: the validated decoder options of ``DPT`` (what ``config.json`` stores)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from segcore.errors import InvalidOptionError
from segcore.options import ArchitectureOptions, int_sequence, one_of, positive_int, to_tuple
from segcore_dpt.decoder import READOUT_MODES

DEFAULT_INTERMEDIATE_CHANNELS = (256, 512, 1024, 1024)


def _block_indices(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Sequence) or isinstance(value, str) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise InvalidOptionError(
            f"{attribute.name} must be None or a sequence of block indices (ints, negative ones "
            f"count from the last block), got {value!r}"
        )


@attrs.frozen
class DPTOptions(ArchitectureOptions):
    """Options of the DPT encoder sampling, decoder and head.

    Attributes:
        encoder_output_indices: the transformer blocks whose tokens the decoder reads, one per
            encoder stage (``encoder_depth`` values, increasing; negative values count from
            the last block), or ``None`` to sample ``encoder_depth`` blocks uniformly (blocks
            2, 5, 8 and 11 of a 12-block ViT at depth 4).
        decoder_readout: how the prefix tokens (class and register tokens) join the patch
            tokens: "cat" (the class token is concatenated to every patch token and a
            Linear + GELU projects back), "add" (the mean of the prefix tokens is added) or
            "ignore" (they are dropped; the choice for encoders without prefix tokens).
        decoder_intermediate_channels: channels of each reassembly block while it resamples
            its map to reductions 4, 8, 16, 32...; one positive int per encoder stage.
        decoder_fusion_channels: channels of the reassembled maps, of the fusion stages and of
            the segmentation head; a positive int.
    """

    encoder_output_indices: tuple[int, ...] | None = attrs.field(
        default=None, converter=to_tuple, validator=_block_indices
    )
    decoder_readout: str = attrs.field(default="cat", validator=one_of(*READOUT_MODES))
    decoder_intermediate_channels: tuple[int, ...] = attrs.field(
        default=DEFAULT_INTERMEDIATE_CHANNELS, converter=to_tuple, validator=int_sequence()
    )
    decoder_fusion_channels: int = attrs.field(default=256, validator=positive_int)

    def check(self, encoder_depth: int) -> None:
        channels = self.decoder_intermediate_channels
        if len(channels) != encoder_depth:
            hint = _resized(channels, encoder_depth)
            raise InvalidOptionError(
                f"decoder_intermediate_channels must have one value per encoder stage: "
                f"encoder_depth={encoder_depth} needs {encoder_depth}, got {len(channels)} "
                f"{channels}. Use e.g. decoder_intermediate_channels={hint}."
            )
        indices = self.encoder_output_indices
        if indices is not None and len(indices) != encoder_depth:
            raise InvalidOptionError(
                f"encoder_output_indices must name one block per encoder stage: "
                f"encoder_depth={encoder_depth} needs {encoder_depth} indices, got "
                f"{len(indices)} {indices}. Give {encoder_depth} indices, or None to sample "
                f"the blocks uniformly."
            )


def _resized(channels: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """``channels`` cut or extended (repeating its last value) to ``depth`` values."""
    base = channels or DEFAULT_INTERMEDIATE_CHANNELS
    return tuple(base[:depth]) + (base[-1],) * max(0, depth - len(base))
