"""``FPN``: encoder -> FPN decoder -> segmentation head (+ optional classification head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import nn

from segcore.errors import EncoderCapabilityError
from segcore.model import SegmentationModel
from segcore_fpn.decoder import PYRAMID_LEVELS, FPNDecoder
from segcore_fpn.options import FPNOptions


class FPN(SegmentationModel):
    """Feature Pyramid Network (https://arxiv.org/abs/1612.03144) for semantic segmentation.

    The four deepest encoder features are projected to ``decoder_pyramid_channels`` by 1x1
    convolutions and joined top-down, each level being the 2x-upsampled coarser level plus
    its own projection. Every pyramid level then goes through 3x3 conv-GroupNorm-ReLU
    segmentation blocks that upsample it 2x per block until it reaches the finest level, at
    1/4 of the input size with ``encoder_depth=5``. The four refined maps are summed
    ("add") or concatenated ("cat"), passed through spatial dropout, and the head's 1x1
    convolution and bilinear upsampling turn them into the mask.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34".
        encoder_depth: number of encoder stages used, 3-5. The decoder reads the four deepest
            features, so its output is at 1/4 of the input size for 5, 1/2 for 4 and full
            size for 3 (the input itself is then the finest level); the head's
            ``upsampling`` applies on top of that, as in SMP.
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        decoder_pyramid_channels: channels of the feature pyramid (1x1 projections and
            top-down sums); a positive int, default 256.
        decoder_segmentation_channels: channels of the segmentation blocks on each pyramid
            level; a multiple of 32 (GroupNorm with 32 groups), default 128.
        decoder_merge_policy: "add" (sum the four refined levels; default) or "cat"
            (concatenate them, so the head gets 4 times ``decoder_segmentation_channels``).
        decoder_dropout: ``Dropout2d`` probability after the merge, in [0, 1); default 0.2,
            0 disables it. Active only in training mode.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (logits; default), "sigmoid", "softmax",
            "logsoftmax", "tanh", "identity" or a callable returning a module.
        upsampling: factor of the bilinear upsampling in the segmentation head, a positive
            int; the default 4 gives masks of the input size with ``encoder_depth=5`` (use 2
            with depth 4 and 1 with depth 3 for that).
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout``, ``activation``); the model
            then returns ``(mask, labels)``. ``None`` (default): no such head.
        decoder_interpolation: upsampling mode of the top-down pathway: "nearest" (default),
            "bilinear", "bicubic", "area" or "nearest-exact".
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them); an
            unknown ``decoder_*`` name is refused with the closest valid option.

    Shapes:
        input ``(N, in_channels, H, W)`` with ``H`` and ``W`` divisible by the encoder's output
        stride (``2 ** encoder_depth``, at most 32) -> mask
        ``(N, classes, H * f, W * f)`` with ``f = upsampling / 2 ** (encoder_depth - 3)``, i.e.
        ``(N, classes, H, W)`` with the defaults; labels ``(N, aux classes)`` with
        ``aux_params``.

    Example::

        model = FPN("resnet34", encoder_weights=None, classes=3, decoder_merge_policy="cat")
        mask = model(torch.rand(2, 3, 256, 320))   # (2, 3, 256, 320)
    """

    architecture: ClassVar[str] = "fpn"
    options_class = FPNOptions
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        decoder_pyramid_channels: int = 256,
        decoder_segmentation_channels: int = 128,
        decoder_merge_policy: str = "add",
        decoder_dropout: float = 0.2,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        upsampling: int = 4,
        aux_params: Mapping[str, Any] | None = None,
        *,
        decoder_interpolation: str = "nearest",
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(self, encoder_channels: tuple[int, ...], options: FPNOptions) -> FPNDecoder:
        depth = len(encoder_channels) - 1
        _check_pyramid_levels(repr(self.encoder_spec.name), encoder_channels)
        return FPNDecoder(
            encoder_channels=encoder_channels,
            encoder_depth=depth,
            pyramid_channels=options.decoder_pyramid_channels,
            segmentation_channels=options.decoder_segmentation_channels,
            dropout=options.decoder_dropout,
            merge_policy=options.decoder_merge_policy,
            interpolation_mode=options.decoder_interpolation,
        )

    def segmentation_head_options(self, options: FPNOptions) -> dict[str, Any]:
        return {"in_channels": self.decoder.out_channels, "kernel_size": 1,
                "upsampling": options.upsampling}


def _check_pyramid_levels(encoder: str, encoder_channels: tuple[int, ...]) -> None:
    """Every level the pyramid reads must have channels (transformer encoders have none at
    reduction 2, so they only fit at ``encoder_depth=5``)."""
    depth = len(encoder_channels) - 1
    first = depth + 1 - PYRAMID_LEVELS
    empty = [level for level in range(first, depth + 1) if encoder_channels[level] == 0]
    if empty:
        reductions = ", ".join(str(2**level) for level in empty)
        raise EncoderCapabilityError(
            f"FPN reads the {PYRAMID_LEVELS} deepest encoder features (reductions "
            f"{2**first} to {2**depth} at encoder_depth={depth}), but the encoder {encoder} has "
            f"no features at reduction {reductions}. Use a larger encoder_depth (5 reads "
            f"reductions 4 to 32)."
        )
