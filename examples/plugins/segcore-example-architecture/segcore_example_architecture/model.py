"""``ExampleFPN``: encoder -> feature pyramid -> segmentation head (+ optional aux head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from segcore.model import SegmentationModel
from segcore_example_architecture.decoder import ExampleFPNDecoder
from segcore_example_architecture.options import ExampleFPNOptions


class ExampleFPN(SegmentationModel):
    """A small feature pyramid network: lateral 1x1 convolutions on the encoder stages,
    top-down nearest upsampling and sum, a 3x3 conv-norm-ReLU, upsampling to the input size.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34".
        encoder_depth: number of encoder stages used, 3-5.
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        pyramid_channels: channels of every pyramid level.
        pyramid_levels: how many of the deepest encoder stages feed the pyramid (``None``: all).
        decoder_dropout: ``Dropout2d`` probability before the head, in [0, 1).
        encoder_output_stride: 32, or 16 / 8 for a dilated encoder.
        in_channels: channels of the input images.
        classes: channels of the output mask.
        activation: applied to the mask: ``None``, "sigmoid", "softmax", ... or a callable.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling``, ``dropout``, ``activation``); the model then returns
            ``(mask, labels)``.
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them).

    Shapes: input ``(N, in_channels, H, W)`` -> mask ``(N, classes, H, W)`` for any H, W.

    Example::

        model = ExampleFPN("resnet18", encoder_weights=None, classes=3)
        mask = model(torch.rand(2, 3, 63, 65))   # (2, 3, 63, 65)
    """

    architecture = "examplefpn"  # equals the ArchitectureSpec's name
    options_class = ExampleFPNOptions
    requires_divisible_input_shape = False  # the decoder interpolates to the input's size
    min_encoder_depth = 3
    requires_dilation = False  # only with encoder_output_stride 8 / 16, which is not the default

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        pyramid_channels: int = 64,
        pyramid_levels: int | None = None,
        decoder_dropout: float = 0.0,
        encoder_output_stride: int = 32,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        aux_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            encoder_name=encoder_name,
            encoder_depth=encoder_depth,
            encoder_weights=encoder_weights,
            in_channels=in_channels,
            classes=classes,
            activation=activation,
            aux_params=aux_params,
            encoder_params=kwargs,
            pyramid_channels=pyramid_channels,
            pyramid_levels=pyramid_levels,
            decoder_dropout=decoder_dropout,
            encoder_output_stride=encoder_output_stride,
        )

    def encoder_output_stride(self, options: ExampleFPNOptions) -> int:
        return options.encoder_output_stride

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: ExampleFPNOptions
    ) -> nn.Module:
        return ExampleFPNDecoder(
            encoder_channels,
            pyramid_channels=options.pyramid_channels,
            levels=options.pyramid_levels,
            dropout=options.decoder_dropout,
        )

    def segmentation_head_options(self, options: ExampleFPNOptions) -> dict[str, Any]:
        # the decoder already returns the input's size: a 1x1 conv, no upsampling
        return {"in_channels": options.pyramid_channels, "kernel_size": 1, "upsampling": 1}
