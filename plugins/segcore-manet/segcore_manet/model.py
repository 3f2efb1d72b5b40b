"""``MAnet``: encoder -> MAnet decoder -> segmentation head (+ optional classification head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from torch import nn

from segcore.model import SegmentationModel
from segcore.nn import NormOption
from segcore_manet.decoder import MAnetDecoder
from segcore_manet.options import MAnetOptions


class MAnet(SegmentationModel):
    """MA-Net, Multi-scale Attention Net (https://ieeexplore.ieee.org/document/9201310).

    A position-wise attention block (PAB) first lets every position of the deepest encoder
    features attend to every other position and adds the attended values back before a 3x3
    convolution. Each following block, a multi-scale fusion attention block (MFAB), brings the
    deeper map to the channel count of the next encoder skip, upsamples it by 2, scales its
    channels by squeeze-and-excitation gates computed from both the map and the skip, then
    concatenates the skip and applies two conv-norm-ReLU layers. The last block has no skip
    and only upsamples by 2 and applies two conv-norm-ReLU layers, so a 3x3 segmentation head
    gives the mask at the input's size.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34" or
            "tu-<timm model>".
        encoder_depth: number of encoder stages used, 3-5; the decoder has one block per stage
            and the attention block works on the features at 1/2**encoder_depth of the input.
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation.
        decoder_use_batchnorm: ``True`` (BatchNorm2d between each decoder convolution and its
            ReLU), ``False`` (no normalisation; the convolutions get a bias) or "inplace"
            (InPlaceABN, needs the ``inplace_abn`` package). ``decoder_use_norm`` replaces it
            when given.
        decoder_channels: output channels of the decoder blocks, deepest first; one value per
            encoder stage (default ``(256, 128, 64, 32, 16)`` for depth 5).
        decoder_pab_channels: channels of the query and key projections of the position-wise
            attention block (default 64); a positive int.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (logits, the default), "sigmoid",
            "softmax", "logsoftmax", "tanh", "identity" or a callable returning a module.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout`` in [0, 1), ``activation``);
            the model then returns ``(mask, labels)``. ``None`` (default): no such head.
        decoder_use_norm: normalisation as in SMP 0.6: ``True``, ``False``, "batchnorm",
            "identity", "layernorm", "instancenorm", "inplace" or ``{"type": ..., **kwargs}``;
            ``None`` (default) follows ``decoder_use_batchnorm``.
        decoder_interpolation: how each decoder block upsamples by 2: "nearest" (default),
            "bilinear", "bicubic", "area" or "nearest-exact".
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them); a
            ``decoder_*`` name here is refused as a misspelt decoder option.

    Shapes: input ``(N, in_channels, H, W)`` with ``H`` and ``W`` divisible by the encoder's
    output stride (``2 ** encoder_depth``: 32 at depth 5) -> mask ``(N, classes, H, W)``, or
    ``(mask, labels)`` with labels ``(N, aux_params["classes"])``. The attention block's
    memory grows with the square of the number of deepest-feature positions.

    Example::

        model = MAnet("resnet34", encoder_weights=None, in_channels=1, classes=3)
        mask = model(torch.rand(2, 1, 128, 96))   # (2, 3, 128, 96)
    """

    architecture: ClassVar[str] = "manet"
    options_class = MAnetOptions
    batchnorm_argument = "decoder_use_batchnorm"
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        decoder_use_batchnorm: bool | str = True,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        decoder_pab_channels: int = 64,
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

    def build_decoder(self, encoder_channels: tuple[int, ...], options: MAnetOptions) -> nn.Module:
        return MAnetDecoder(
            encoder_channels=encoder_channels,
            decoder_channels=options.decoder_channels,
            use_norm=options.decoder_use_norm,
            pab_channels=options.decoder_pab_channels,
            interpolation_mode=options.decoder_interpolation,
        )

    def segmentation_head_options(self, options: MAnetOptions) -> dict[str, Any]:
        return {"in_channels": options.decoder_channels[-1], "kernel_size": 3, "upsampling": 1}
