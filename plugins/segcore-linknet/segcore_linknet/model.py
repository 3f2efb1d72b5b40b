"""``Linknet``: encoder -> Linknet decoder -> segmentation head (+ optional classification head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import nn

from segcore.model import SegmentationModel
from segcore.nn import NormOption
from segcore_linknet.decoder import PREFINAL_CHANNELS, LinknetDecoder
from segcore_linknet.options import LinknetOptions


class Linknet(SegmentationModel):
    """LinkNet (https://arxiv.org/abs/1707.03718): encoder and light decoder with summed skips.

    Each decoder block reduces its input to a quarter of the channels with a 1x1
    conv-norm-ReLU, doubles the height and width with a 4x4 stride-2 transposed convolution
    (with norm and ReLU) and brings the channels to those of the next shallower encoder stage
    with a second 1x1 conv-norm-ReLU. The encoder features of that stage are then added to the
    block's output, so the skips are summed rather than concatenated and the decoder stays
    narrow. The last block has no skip and returns 32 channels at the input resolution, which
    the segmentation head maps to the classes with a 1x1 convolution.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34".
        encoder_depth: number of encoder stages used, 3-5 (one decoder block per stage).
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        decoder_use_batchnorm: ``True`` (BatchNorm2d after each decoder convolution),
            ``False`` (no normalisation; the 1x1 convolutions get a bias) or "inplace"
            (InPlaceABN, needs the ``inplace_abn`` package). ``decoder_use_norm`` replaces it
            when given.
        in_channels: channels of the input images.
        classes: channels of the output mask.
        activation: applied to the mask: ``None``, "sigmoid", "softmax", "logsoftmax",
            "tanh", "identity" or a callable returning a module.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout`` in [0, 1), ``activation``);
            the model then returns ``(mask, labels)``. ``None`` (default): no such head.
        decoder_use_norm: normalisation as in SMP 0.6: ``True``, ``False``, "batchnorm",
            "identity", "layernorm", "instancenorm", "inplace" or ``{"type": ..., **kwargs}``.
            ``None`` (default) follows ``decoder_use_batchnorm``.
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them).

    Shapes:
        input ``(N, in_channels, H, W)`` -> mask ``(N, classes, H, W)``; with ``aux_params``,
        ``(mask, labels)`` with labels ``(N, aux_params["classes"])``. The decoder's exact x2
        steps need ``H`` and ``W`` to be multiples of the encoder's output stride
        (``2 ** encoder_depth``: 32 at depth 5); the core refuses or pads other sizes
        (``requires_divisible_input_shape``).

    Example::

        model = Linknet("resnet34", encoder_weights=None, in_channels=1, classes=3)
        mask = model(torch.rand(2, 1, 128, 96))   # (2, 3, 128, 96)
    """

    architecture: ClassVar[str] = "linknet"
    options_class = LinknetOptions
    batchnorm_argument = "decoder_use_batchnorm"
    # Each transposed convolution exactly doubles the size and the skip is added to it, so
    # the input must be divisible by 2 ** encoder_depth, the encoder's output stride.
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3
    requires_dilation: ClassVar[bool] = False

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        decoder_use_batchnorm: bool | str = True,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        aux_params: Mapping[str, Any] | None = None,
        *,
        decoder_use_norm: NormOption = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: LinknetOptions
    ) -> LinknetDecoder:
        return LinknetDecoder(
            encoder_channels=encoder_channels,
            prefinal_channels=PREFINAL_CHANNELS,
            use_norm=options.decoder_use_norm,
        )

    def segmentation_head_options(self, options: LinknetOptions) -> dict[str, Any]:
        return {"in_channels": PREFINAL_CHANNELS, "kernel_size": 1, "upsampling": 1}
