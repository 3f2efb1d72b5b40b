"""``UnetPlusPlus``: encoder -> UNet++ decoder -> segmentation head (+ classification head)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from torch import nn

from segcore.model import SegmentationModel
from segcore.nn import NormOption
from segcore_unetplusplus.decoder import UnetPlusPlusDecoder
from segcore_unetplusplus.options import UnetPlusPlusOptions


class UnetPlusPlus(SegmentationModel):
    """UNet++ (https://arxiv.org/abs/1807.10165): a U-Net whose skips are nested decoder paths.

    Instead of one skip connection per resolution, UNet++ grows a chain of decoder nodes at
    each resolution of the encoder, shorter the deeper it sits. Each node doubles the size of
    the previous node of the chain one resolution deeper, concatenates the encoder features
    and the outputs of all earlier nodes at its own resolution, and applies two conv-norm-ReLU
    layers (with optional scSE attention). The last node of each chain feeds the next finer
    chain, and a final node at the input's size gives the mask to a 3x3 convolution head.

    Args:
        encoder_name: encoder name (``segcore.list_encoders()``), e.g. "resnet34".
        encoder_depth: number of encoder stages used, 3-5 (default 5).
        encoder_weights: pretrained weights tag ("imagenet"...), a weights file, or ``None``
            for random initialisation (default "imagenet").
        decoder_use_batchnorm: ``True`` (default: BatchNorm2d between each convolution and its
            ReLU), ``False`` (no normalisation; convolutions get a bias) or "inplace"
            (InPlaceABN, needs the ``inplace_abn`` package). ``decoder_use_norm`` replaces it
            when given.
        decoder_channels: output channels of the nodes that lead to the mask, deepest first;
            one value per encoder stage (default ``(256, 128, 64, 32, 16)``, for depth 5).
            The inner nodes take the channels of the encoder stage at their resolution.
        decoder_attention_type: ``None`` (default) or "scse"
            (https://arxiv.org/abs/1808.08127), applied to each node's fused input and output.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (default, logits), "sigmoid", "softmax",
            "logsoftmax", "tanh", "identity" or a callable returning a module.
        aux_params: options of a classification head on the deepest encoder features
            (``classes``, ``pooling`` "avg"/"max", ``dropout`` in [0, 1), ``activation``); the
            model then returns ``(mask, labels)``. ``None`` (default): no such head.
        decoder_use_norm: normalisation as in SMP 0.6: ``True``, ``False``, "batchnorm",
            "identity", "layernorm", "instancenorm", "inplace" or ``{"type": ..., **kwargs}``.
            ``None`` (default) follows ``decoder_use_batchnorm``.
        decoder_interpolation: how each node doubles the size: "nearest" (default),
            "bilinear", "bicubic", "area" or "nearest-exact".
        **kwargs: extra arguments for the encoder (``tu-`` timm encoders take them).

    Shapes: input ``(N, in_channels, H, W)`` -> mask ``(N, classes, H, W)``, or
    ``(mask, labels)`` with labels ``(N, aux_params["classes"])``. The decoder needs ``H`` and
    ``W`` divisible by the encoder's output stride (``2 ** encoder_depth``, 32 by default):
    other sizes are zero-padded at the bottom and right and the mask is cropped back (set
    ``model.pad_inputs = False`` to refuse them, as SMP does).

    Example::

        model = UnetPlusPlus("resnet34", encoder_weights=None, in_channels=1, classes=3)
        mask = model(torch.rand(2, 1, 128, 96))   # (2, 3, 128, 96)
        mask = model(torch.rand(2, 1, 100, 70))   # (2, 3, 100, 70): padded, then cropped
    """

    #: torch.jit.script refuses it (as SMP's); docs/export.md
    _is_torch_scriptable = False

    architecture: ClassVar[str] = "unetplusplus"
    options_class = UnetPlusPlusOptions
    batchnorm_argument = "decoder_use_batchnorm"
    # Every node doubles the size of a map half as large, so each encoder map must be exactly
    # half the previous one: SMP's rule, H and W divisible by the encoder's output stride
    # (the core pads other sizes to it and crops the mask back).
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3

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

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: UnetPlusPlusOptions
    ) -> nn.Module:
        return UnetPlusPlusDecoder(
            encoder_channels=encoder_channels,
            decoder_channels=options.decoder_channels,
            use_norm=options.decoder_use_norm,
            attention_type=options.decoder_attention_type,
            # SMP builds (but does not apply) a center block for VGG encoders: an encoder whose
            # deepest feature comes straight from a pooling layer declares it.
            add_center_block=self.encoder_spec.deepest_feature_pooled,
            interpolation_mode=options.decoder_interpolation,
        )

    def segmentation_head_options(self, options: UnetPlusPlusOptions) -> dict[str, Any]:
        return {"in_channels": options.decoder_channels[-1], "kernel_size": 3, "upsampling": 1}

