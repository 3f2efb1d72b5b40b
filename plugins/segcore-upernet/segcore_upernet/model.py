"""``UPerNet``: encoder -> UPerNet decoder -> segmentation head (+ optional classification
head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import nn

from segcore.model import SegmentationModel
from segcore.nn import NormOption
from segcore_upernet.decoder import UPerNetDecoder
from segcore_upernet.options import UPerNetOptions


class UPerNet(SegmentationModel):
    """UPerNet: Unified Perceptual Parsing (https://arxiv.org/abs/1807.10221) for segmentation.

    The encoder features from reduction 4 down are layer-normalised, and the deepest one goes
    through a pyramid pooling module (average pooling to 1, 2, 3 and 6 bins, 1x1
    conv-norm-ReLU, bilinear resizing, concatenation with the input and a 3x3 fusion) that
    gives ``decoder_channels`` channels. A top-down feature pyramid then adds each shallower
    feature, projected by a 1x1 conv-norm-ReLU, to the bilinearly resized level above it and
    refines every sum with a 3x3 conv-norm-ReLU. All levels are resized to 1/4 of the input
    size, concatenated and fused by a 3x3 conv-norm-ReLU, and the head's 1x1 convolution and
    bilinear ``upsampling`` turn the result into the mask.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34".
        encoder_depth: number of encoder stages used, 3-5. The decoder reads the features
            from reduction 4 to ``2 ** encoder_depth`` (the input and the reduction-2
            features are never used), so its output is at 1/4 of the input size at every
            depth.
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        decoder_channels: channels of the pyramid pooling output, of every pyramid level and
            of the decoder output; a positive int, default 256.
        decoder_use_norm: normalisation between each decoder convolution and its ReLU:
            "batchnorm" (default) or ``True``, ``False`` or "identity" (none; the
            convolutions get a bias), "layernorm" (over the channels), "inplace" (InPlaceABN,
            needs the ``inplace_abn`` package) or ``{"type": ..., **kwargs}``. "instancenorm"
            is refused: the 1x1 pooling level cannot be instance-normalised. As in SMP the
            fusion inside the pyramid pooling module always uses BatchNorm.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (logits; default), "sigmoid", "softmax",
            "logsoftmax", "tanh", "identity" or a callable returning a module.
        upsampling: factor of the bilinear upsampling in the segmentation head, a positive
            int; the default 4 gives masks of the input size.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout``, ``activation``); the model
            then returns ``(mask, labels)``. ``None`` (default): no such head.
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them); an
            unknown ``decoder_*`` name is refused with the closest valid option.

    Shapes:
        input ``(N, in_channels, H, W)`` -> mask ``(N, classes, H * f, W * f)`` with
        ``f = upsampling / 4``, i.e. ``(N, classes, H, W)`` with the defaults; labels
        ``(N, aux classes)`` with ``aux_params``. H and W divisible by the encoder's output
        stride (``2 ** encoder_depth``, at most 32) go through unchanged, as in SMP; other
        sizes are padded to the next multiple and the mask is cropped back.

    Example::

        model = UPerNet("resnet34", encoder_weights=None, classes=3, decoder_channels=128)
        mask = model(torch.rand(2, 3, 256, 320))   # (2, 3, 256, 320)
    """

    architecture: ClassVar[str] = "upernet"
    options_class = UPerNetOptions
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        decoder_channels: int = 256,
        decoder_use_norm: NormOption = "batchnorm",
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        upsampling: int = 4,
        aux_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: UPerNetOptions
    ) -> UPerNetDecoder:
        return UPerNetDecoder(
            encoder_channels=encoder_channels,
            encoder_depth=len(encoder_channels) - 1,
            decoder_channels=options.decoder_channels,
            use_norm=options.decoder_use_norm,
        )

    def segmentation_head_options(self, options: UPerNetOptions) -> dict[str, Any]:
        return {"in_channels": options.decoder_channels, "kernel_size": 1,
                "upsampling": options.upsampling}
