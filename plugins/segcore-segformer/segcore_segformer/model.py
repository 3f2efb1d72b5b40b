"""``Segformer``: encoder -> Segformer decoder -> segmentation head (+ optional classification
head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import nn

from segcore.model import SegmentationModel
from segcore_segformer.decoder import SegformerDecoder
from segcore_segformer.options import SegformerOptions


class Segformer(SegmentationModel):
    """Segformer (https://arxiv.org/abs/2105.15203): an all-MLP decoder over multi-scale features.

    Every encoder stage is projected to ``decoder_segmentation_channels`` by its own linear
    layer applied at each pixel (the empty reduction-2 level of transformer-style encoders is
    skipped). The projections are resized bilinearly to 1/4 of the input size, whatever the
    encoder depth, and concatenated with the deepest stage first. A 1x1 conv-BatchNorm-ReLU
    fuses them into ``decoder_segmentation_channels`` channels, which the head's 1x1
    convolution and bilinear upsampling turn into the mask.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34" or
            "tu-convnext_atto".
        encoder_depth: number of encoder stages used, 3-5 (default 5); the decoder reads every
            one of them and its output stays at 1/4 of the input size.
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation. Default "imagenet".
        decoder_segmentation_channels: channels of the per-stage linear projections and of
            the fusing 1x1 conv-BatchNorm-ReLU; a positive int, default 256.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (logits; default), "sigmoid", "softmax",
            "logsoftmax", "tanh", "identity" or a callable returning a module.
        upsampling: factor of the bilinear upsampling in the segmentation head, a positive
            int; the default 4 gives masks of the input size (the decoder works at 1/4).
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout``, ``activation``); the model
            then returns ``(mask, labels)``. ``None`` (default): no such head.
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them); an
            unknown ``decoder_*`` name is refused with the closest valid option.

    Shapes:
        input ``(N, in_channels, H, W)``, any size (padded to the next multiple of the
        encoder's output stride, ``2 ** encoder_depth`` and at most 32, and cropped back;
        multiples go through untouched, as in SMP) -> mask
        ``(N, classes, H * upsampling / 4, W * upsampling / 4)``, i.e. ``(N, classes, H, W)``
        with the default ``upsampling=4``; labels ``(N, aux classes)`` with ``aux_params``.

    Example::

        model = Segformer("resnet34", encoder_weights=None, classes=3,
                          decoder_segmentation_channels=128)
        mask = model(torch.rand(2, 3, 256, 320))   # (2, 3, 256, 320)
    """

    architecture: ClassVar[str] = "segformer"
    options_class = SegformerOptions
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        decoder_segmentation_channels: int = 256,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        upsampling: int = 4,
        aux_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: SegformerOptions
    ) -> SegformerDecoder:
        return SegformerDecoder(
            encoder_channels=encoder_channels,
            encoder_depth=len(encoder_channels) - 1,
            segmentation_channels=options.decoder_segmentation_channels,
        )

    def segmentation_head_options(self, options: SegformerOptions) -> dict[str, Any]:
        return {"in_channels": options.decoder_segmentation_channels, "kernel_size": 1,
                "upsampling": options.upsampling}
