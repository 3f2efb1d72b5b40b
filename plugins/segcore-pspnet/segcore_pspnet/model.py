"""``PSPNet``: encoder -> pyramid pooling decoder -> segmentation head (+ classification head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import nn

from segcore.model import SegmentationModel
from segcore.nn import NormOption
from segcore_pspnet.decoder import PSPDecoder
from segcore_pspnet.options import PSPNetOptions


class PSPNet(SegmentationModel):
    """Pyramid Scene Parsing Network (https://arxiv.org/abs/1612.01105) for segmentation.

    The deepest encoder feature map is average-pooled into 1x1, 2x2, 3x3 and 6x6 bins, and
    each pooled map goes through a 1x1 conv-norm-ReLU to a quarter of the feature's channels
    and is bilinearly upsampled back to the feature's size. These four context maps are
    concatenated with the feature itself, fused by a 1x1 conv-norm-ReLU to
    ``psp_out_channels`` channels and passed through spatial dropout. The head's 3x3
    convolution maps the result to the classes and its bilinear upsampling by ``upsampling``
    restores the input size, so the shallower, high-resolution features are never used.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34".
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        encoder_depth: number of encoder stages used, 3-5; default 3, whose deepest features
            are at 1/8 of the input size (4: 1/16, 5: 1/32). Change ``upsampling`` with it
            (16 for 4, 32 for 5) to keep masks of the input size.
        psp_out_channels: channels of the decoder output, a positive int; default 512.
        psp_use_batchnorm: ``True`` (default; BatchNorm2d between each decoder convolution and
            its ReLU), ``False`` (no normalisation; the convolutions get a bias) or "inplace"
            (InPlaceABN, needs the ``inplace_abn`` package). ``decoder_use_norm`` replaces it
            when given.
        psp_dropout: ``Dropout2d`` probability after the fusion, in [0, 1); default 0.2, 0
            disables it. Active only in training mode.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (logits; default), "sigmoid", "softmax",
            "logsoftmax", "tanh", "identity" or a callable returning a module.
        upsampling: factor of the bilinear upsampling in the segmentation head, a positive
            int; the default 8 gives masks of the input size with ``encoder_depth=3``.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout``, ``activation``); the model
            then returns ``(mask, labels)``. ``None`` (default): no such head.
        decoder_use_norm: normalisation as in SMP 0.6: ``True``, ``False``, "batchnorm",
            "identity", "layernorm", "instancenorm", "inplace" or ``{"type": ..., **kwargs}``;
            ``None`` (default) follows ``psp_use_batchnorm``. The 1x1 pyramid level is never
            normalised.
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them); an
            unknown ``decoder_*`` or ``psp_*`` name is refused with the closest valid option.

    Shapes:
        input ``(N, in_channels, H, W)`` with ``H`` and ``W`` divisible by the encoder's output
        stride (``2 ** encoder_depth``: 8 by default) -> mask
        ``(N, classes, H * f, W * f)`` with ``f = upsampling / 2 ** encoder_depth``, i.e.
        ``(N, classes, H, W)`` with the defaults; labels ``(N, aux classes)`` with
        ``aux_params``.

    Example::

        model = PSPNet("resnet34", encoder_weights=None, classes=3)
        mask = model(torch.rand(2, 3, 256, 320))   # (2, 3, 256, 320)
        deeper = PSPNet("resnet34", encoder_weights=None, encoder_depth=5, upsampling=32)
    """

    architecture: ClassVar[str] = "pspnet"
    options_class = PSPNetOptions
    batchnorm_argument = "psp_use_batchnorm"
    #: a ``decoder_*`` or ``psp_*`` name that is not an option is a typo, not an encoder argument
    decoder_argument_prefixes = ("decoder_", "psp_")
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        encoder_depth: int = 3,
        psp_out_channels: int = 512,
        psp_use_batchnorm: bool | str = True,
        psp_dropout: float = 0.2,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        upsampling: int = 8,
        aux_params: Mapping[str, Any] | None = None,
        *,
        decoder_use_norm: NormOption = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: PSPNetOptions
    ) -> PSPDecoder:
        return PSPDecoder(
            encoder_channels=encoder_channels,
            use_norm=options.decoder_use_norm,
            out_channels=options.psp_out_channels,
            dropout=options.psp_dropout,
        )

    def segmentation_head_options(self, options: PSPNetOptions) -> dict[str, Any]:
        return {"in_channels": options.psp_out_channels, "kernel_size": 3,
                "upsampling": options.upsampling}
