"""``Unet``: encoder -> Unet decoder -> segmentation head (+ optional classification head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from segcore.model import SegmentationModel
from segcore.nn import NormOption
from segcore_unet.decoder import UnetDecoder
from segcore_unet.options import UnetOptions


class Unet(SegmentationModel):
    """U-Net (https://arxiv.org/abs/1505.04597): an encoder and a decoder joined by skips.

    Each decoder block upsamples the deeper features to the size of the next encoder stage,
    concatenates that stage's features and applies two conv-norm-ReLU layers. The decoder
    interpolates to each skip's exact size, so any input size works and the mask has the
    input's size.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34".
        encoder_depth: number of encoder stages used, 3-5.
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        decoder_use_batchnorm: ``True`` (BatchNorm2d between each convolution and its ReLU),
            ``False`` (no normalisation; convolutions get a bias) or "inplace" (InPlaceABN,
            needs the ``inplace_abn`` package). ``decoder_use_norm`` replaces it when given.
        decoder_channels: output channels of the decoder blocks, deepest first; one value per
            encoder stage.
        decoder_attention_type: ``None`` or "scse" (https://arxiv.org/abs/1808.08127).
        in_channels: channels of the input images.
        classes: channels of the output mask.
        activation: applied to the mask: ``None``, "sigmoid", "softmax", "logsoftmax",
            "tanh", "identity" or a callable returning a module.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling``, ``dropout``, ``activation``); the model then returns
            ``(mask, labels)``.
        decoder_use_norm: normalisation as in SMP 0.6: ``True``, ``False``, "batchnorm",
            "identity", "layernorm", "instancenorm", "inplace" or ``{"type": ..., **kwargs}``.
        decoder_interpolation: upsampling mode: "nearest", "bilinear", "bicubic", "area" or
            "nearest-exact".
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them).

    Shapes: input ``(N, in_channels, H, W)`` -> mask ``(N, classes, H, W)`` for any H, W.

    Example::

        model = Unet("resnet34", encoder_weights=None, in_channels=1, classes=3)
        mask = model(torch.rand(2, 1, 100, 130))   # (2, 3, 100, 130)
    """

    architecture = "unet"
    options_class = UnetOptions
    batchnorm_argument = "decoder_use_batchnorm"
    requires_divisible_input_shape = False

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        decoder_use_batchnorm: bool | str = True,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        decoder_attention_type: str | None = None,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        aux_params: Mapping[str, Any] | None = None,
        *,
        decoder_use_norm: NormOption = None,
        decoder_interpolation: str = "nearest",
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(self, encoder_channels: tuple[int, ...], options: UnetOptions) -> nn.Module:
        return UnetDecoder(
            encoder_channels=encoder_channels,
            decoder_channels=options.decoder_channels,
            use_norm=options.decoder_use_norm,
            attention_type=options.decoder_attention_type,
            # As SMP does for VGG: an encoder whose deepest feature comes straight from a
            # pooling layer declares it, and gets two convolutions there.
            add_center_block=self.encoder_spec.deepest_feature_pooled,
            interpolation_mode=options.decoder_interpolation,
        )

    def segmentation_head_options(self, options: UnetOptions) -> dict[str, Any]:
        return {"in_channels": options.decoder_channels[-1], "kernel_size": 3, "upsampling": 1}
