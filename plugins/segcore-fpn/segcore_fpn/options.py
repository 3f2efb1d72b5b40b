"""``FPNOptions``: the validated decoder options of ``FPN`` (what ``config.json`` stores)."""

from __future__ import annotations

from typing import Any

import attrs

from segcore.errors import InvalidOptionError
from segcore.options import (
    ArchitectureOptions,
    interpolation_mode,
    one_of,
    positive_int,
    probability,
)
from segcore_fpn.decoder import GROUP_NORM_GROUPS, MERGE_POLICIES


def _group_norm_channels(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    positive_int(instance, attribute, value)
    if value % GROUP_NORM_GROUPS:
        lower = max(GROUP_NORM_GROUPS, value // GROUP_NORM_GROUPS * GROUP_NORM_GROUPS)
        upper = -(-value // GROUP_NORM_GROUPS) * GROUP_NORM_GROUPS
        choices = f"{lower}" if lower == upper else f"{lower} or {upper}"
        raise InvalidOptionError(
            f"{attribute.name} must be a multiple of {GROUP_NORM_GROUPS} (the segmentation "
            f"blocks normalise with GroupNorm({GROUP_NORM_GROUPS}, channels)), got {value!r}: "
            f"use {choices}"
        )


@attrs.frozen
class FPNOptions(ArchitectureOptions):
    """Options of the FPN decoder and its segmentation head.

    Attributes:
        decoder_pyramid_channels: channels of the feature pyramid (the 1x1 projections of the
            encoder features and the top-down sums); a positive int.
        decoder_segmentation_channels: channels of the 3x3 conv-GroupNorm-ReLU segmentation
            blocks applied to each pyramid level; a multiple of 32 (GroupNorm with 32 groups).
        decoder_merge_policy: how the four refined levels are merged: "add" (sum; the head
            gets ``decoder_segmentation_channels`` channels) or "cat" (concatenation; 4 times
            as many).
        decoder_dropout: probability of the spatial dropout (``Dropout2d``, whole channels)
            after the merge, in [0, 1); 0 disables it.
        decoder_interpolation: upsampling mode of the top-down pathway: "nearest",
            "bilinear", "bicubic", "area" or "nearest-exact".
        upsampling: factor of the bilinear upsampling in the segmentation head; the merged
            map is at 1/4 of the input size with ``encoder_depth=5`` (1/2 with 4, full size
            with 3), so 4 gives masks of the input size at depth 5.
    """

    decoder_pyramid_channels: int = attrs.field(default=256, validator=positive_int)
    decoder_segmentation_channels: int = attrs.field(default=128, validator=_group_norm_channels)
    decoder_merge_policy: str = attrs.field(default="add", validator=one_of(*MERGE_POLICIES))
    decoder_dropout: float = attrs.field(default=0.2, validator=probability)
    decoder_interpolation: str = attrs.field(default="nearest", validator=interpolation_mode)
    upsampling: int = attrs.field(default=4, validator=positive_int)
