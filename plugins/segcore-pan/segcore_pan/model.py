"""``PAN``: encoder -> PAN decoder -> segmentation head (+ optional classification head)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import nn

from segcore.errors import EncoderCapabilityError
from segcore.model import SegmentationModel
from segcore_pan.decoder import PANDecoder
from segcore_pan.options import PANOptions

#: SMP's older name of ``decoder_interpolation``, still accepted with a DeprecationWarning
DEPRECATED_INTERPOLATION = "upscale_mode"


class PAN(SegmentationModel):
    """Pyramid Attention Network (https://arxiv.org/abs/1805.10180) for semantic segmentation.

    A Feature Pyramid Attention block turns the deepest encoder features (kept at 1/16 of the
    input size by a dilated last stage by default) into ``decoder_channels`` maps: a 1x1
    projection weighted pixel by pixel by an attention map built from 7x7, 5x5 and 3x3
    convolutions on three successively max-pooled copies of the features, plus a projection
    of their global average. Global Attention Upsample blocks then go back to 1/4 of the input
    size, one per shallower encoder stage (reductions 16, 8 and 4 at ``encoder_depth=5``),
    each adding the resized coarser map to the stage's 3x3-projected features multiplied
    channel by channel by sigmoid weights computed from the coarser map's global average. The
    segmentation head's 3x3 convolution and bilinear upsampling by ``upsampling`` turn the
    result into the mask.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34". With the
            default ``encoder_output_stride=16`` it must support dilation.
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        encoder_output_stride: reduction of the deepest encoder features: 16 (default; the
            last encoder stage is dilated) or 32 (no dilation, any encoder).
        decoder_channels: channels of the attention blocks and of the segmentation head's
            input; a positive int, default 32.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (logits; default), "sigmoid", "softmax",
            "logsoftmax", "tanh", "identity" or a callable returning a module.
        upsampling: factor of the bilinear upsampling in the segmentation head, a positive
            int; the decoder output is at 1/4 of the input size, so the default 4 gives masks
            of the input size.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout``, ``activation``); the model
            then returns ``(mask, labels)``. ``None`` (default): no such head.
        encoder_depth: number of encoder stages used, 3-5 (default 5); the decoder has
            ``encoder_depth - 2`` upsample blocks and its output stays at 1/4 of the input size.
        decoder_interpolation: resizing mode of the Global Attention Upsample blocks:
            "bilinear" (default, corners aligned), "nearest", "bicubic", "area" or
            "nearest-exact". The Feature Pyramid Attention block is always bilinear, as in
            SMP. SMP's older name ``upscale_mode`` is accepted with a DeprecationWarning.
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them); an
            unknown ``decoder_*`` name is refused with the closest valid option.

    Shapes:
        input ``(N, in_channels, H, W)`` -> mask ``(N, classes, H * upsampling / 4,
        W * upsampling / 4)``, i.e. ``(N, classes, H, W)`` with the default ``upsampling``;
        labels ``(N, aux classes)`` with ``aux_params``. Inputs are padded to a multiple of
        the encoder's output stride ``s`` (``min(encoder_output_stride, 2 ** encoder_depth)``)
        and the mask is cropped back; the padded height and width must be at least ``8 * s``
        (128 with the defaults, 256 with ``encoder_output_stride=32``), since the attention
        block pools the deepest features three times.

    Example::

        model = PAN("resnet34", encoder_weights=None, classes=3)
        mask = model(torch.rand(2, 3, 256, 320))   # (2, 3, 256, 320)
    """

    architecture: ClassVar[str] = "pan"
    options_class = PANOptions
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3
    requires_dilation: ClassVar[bool] = True

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        encoder_output_stride: int = 16,
        decoder_channels: int = 32,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        upsampling: int = 4,
        aux_params: Mapping[str, Any] | None = None,
        *,
        encoder_depth: int = 5,
        decoder_interpolation: str = "bilinear",
        **kwargs: Any,
    ) -> None:
        decoder_interpolation = _pop_deprecated_interpolation(kwargs, decoder_interpolation)
        try:
            super().__init__(**self.constructor_arguments(locals()))
        except EncoderCapabilityError as error:
            spec = self.__dict__.get("encoder_spec")
            if spec is None or spec.supports_dilation:
                raise
            raise EncoderCapabilityError(
                f"{error} PAN dilates the encoder only for encoder_output_stride=16 (the "
                f"default) at encoder_depth=5: pass encoder_output_stride=32 to use "
                f"{encoder_name!r} without dilation."
            ) from error

    def encoder_output_stride(self, options: PANOptions) -> int:
        return options.encoder_output_stride

    def build_decoder(self, encoder_channels: tuple[int, ...], options: PANOptions) -> PANDecoder:
        return PANDecoder(
            encoder_channels=encoder_channels,
            encoder_depth=len(encoder_channels) - 1,
            decoder_channels=options.decoder_channels,
            interpolation_mode=options.decoder_interpolation,
        )

    def segmentation_head_options(self, options: PANOptions) -> dict[str, Any]:
        return {"in_channels": options.decoder_channels, "kernel_size": 3,
                "upsampling": options.upsampling}


def _pop_deprecated_interpolation(kwargs: dict[str, Any], decoder_interpolation: str) -> str:
    """``decoder_interpolation``, or SMP's older ``upscale_mode`` popped from ``kwargs`` (as
    in SMP, the old name wins, with a DeprecationWarning pointing at the caller of PAN)."""
    replacement = kwargs.pop(DEPRECATED_INTERPOLATION, None)
    if replacement is None:
        return decoder_interpolation
    warnings.warn(
        f"{DEPRECATED_INTERPOLATION!r} is deprecated (as in SMP); use "
        f"decoder_interpolation instead",
        DeprecationWarning,
        stacklevel=3,
    )
    return replacement
