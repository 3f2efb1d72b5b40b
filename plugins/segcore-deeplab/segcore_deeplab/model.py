"""``DeepLabV3`` and ``DeepLabV3Plus``: the documented constructors.

Both need an encoder that supports dilation (atrous convolution): its deepest features stay at
1/8 or 1/16 of the input size (``encoder_output_stride``). Inputs must have a height and width
divisible by that stride.

Example::

    model = DeepLabV3Plus("resnet34", encoder_weights=None, classes=3)
    model(torch.rand(2, 3, 256, 256)).shape   # (2, 3, 256, 256)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from torch import nn

from segcore.errors import EncoderCapabilityError
from segcore.model import SegmentationModel
from segcore_deeplab.decoder import DeepLabV3Decoder, DeepLabV3PlusDecoder
from segcore_deeplab.options import DeepLabV3Options, DeepLabV3PlusOptions

EncoderWeights = str | os.PathLike[str] | bool | None
ActivationArgument = str | Callable[..., nn.Module] | None


def default_upsampling(encoder_depth: int, output_stride: int) -> int:
    """The DeepLabV3 head upsampling that gives masks of the input size.

    The deepest features are at ``2 ** encoder_depth`` for depth 3 (the dilated stages are not
    used), else at ``output_stride``.
    """
    return 2**encoder_depth if encoder_depth <= 3 else output_stride


class _DeepLab(SegmentationModel):
    """What DeepLabV3 and DeepLabV3Plus share: a dilated encoder, divisible input sizes."""

    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 3
    requires_dilation: ClassVar[bool] = True
    #: a misspelt ``decoder_*`` argument reaches the encoder, which refuses it naming the options
    decoder_argument_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **arguments: Any) -> None:
        try:
            super().__init__(**arguments)
        except EncoderCapabilityError as error:
            raise EncoderCapabilityError(_dilation_hint(error, arguments)) from error

    def encoder_output_stride(self, options: Any) -> int:
        return options.encoder_output_stride

    def initialize(self) -> None:
        """Keep PyTorch's default initialisation of the decoder and heads, as SMP 0.6.0 does.

        SMP's DeepLabV3 and DeepLabV3Plus (unlike its other architectures) never re-initialise
        their decoder and heads: a model trained from scratch starts from the same
        distributions as in SMP, and the build does not initialise those weights twice.
        """


def _dilation_hint(error: EncoderCapabilityError, arguments: Mapping[str, Any]) -> str:
    """The core's message, plus how DeepLab's options decide whether dilation is needed."""
    from segcore.factory import get_encoder_spec

    if get_encoder_spec(arguments["encoder_name"]).supports_dilation:
        return str(error)
    return (
        f"{error} DeepLab reads the deepest features at 1/encoder_output_stride of the input "
        f"(encoder_output_stride=8 or 16, here {arguments['encoder_output_stride']}); an encoder "
        f"without dilation only fits when 2 ** encoder_depth <= encoder_output_stride "
        f"(encoder_depth=3, or 4 with encoder_output_stride=16)."
    )


class DeepLabV3(_DeepLab):
    """DeepLabV3 from "Rethinking Atrous Convolution for Semantic Image Segmentation"
    (https://arxiv.org/abs/1706.05587).

    Atrous spatial pyramid pooling (ASPP) on the deepest features of a dilated encoder, then
    bilinear upsampling of the logits to the input size.

    Args:
        encoder_name: encoder to use (``segcore.list_encoders()``); it must support dilation.
        encoder_depth: encoder stages used, 3-5.
        encoder_weights: ``"imagenet"``, another tag of the encoder, a weights file, or
            ``None`` for random initialisation.
        decoder_channels: convolution filters of the ASPP module.
        in_channels: input channels.
        classes: output mask channels.
        activation: applied to the mask logits: ``"sigmoid"``, ``"softmax"``,
            ``"logsoftmax"``, ``"tanh"``, ``"identity"``, a callable, or ``None``.
        upsampling: final upsampling factor; ``None`` gives masks of the input size
            (``encoder_output_stride``, or ``2 ** encoder_depth`` at depth 3).
        aux_params: classification head on the deepest features: ``classes``, ``pooling``
            (``"avg"``/``"max"``), ``dropout``, ``activation``; ``None`` for none.
        encoder_output_stride: reduction of the deepest encoder features, 8 or 16.
        decoder_atrous_rates: dilation rates of the three atrous ASPP branches.
        decoder_aspp_separable: depthwise-separable atrous convolutions in ASPP.
        decoder_aspp_dropout: dropout after the ASPP projection, in [0, 1).
        **kwargs: extra arguments of the encoder (``tu-`` timm encoders).

    Input ``(N, in_channels, H, W)`` with ``H`` and ``W`` divisible by the output stride;
    output ``(N, classes, H, W)``, or ``(masks, labels)`` with ``aux_params``.

    Example::

        model = DeepLabV3("resnet34", encoder_weights=None, classes=2, encoder_output_stride=16)
    """

    architecture: ClassVar[str] = "deeplabv3"
    options_class = DeepLabV3Options

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: EncoderWeights = "imagenet",
        decoder_channels: int = 256,
        in_channels: int = 3,
        classes: int = 1,
        activation: ActivationArgument = None,
        upsampling: int | None = None,
        aux_params: Mapping[str, Any] | None = None,
        *,
        encoder_output_stride: int = 8,
        decoder_atrous_rates: Iterable[int] = (12, 24, 36),
        decoder_aspp_separable: bool = False,
        decoder_aspp_dropout: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: DeepLabV3Options
    ) -> DeepLabV3Decoder:
        return DeepLabV3Decoder(
            in_channels=encoder_channels[-1],
            out_channels=options.decoder_channels,
            atrous_rates=options.decoder_atrous_rates,
            aspp_separable=options.decoder_aspp_separable,
            aspp_dropout=options.decoder_aspp_dropout,
        )

    def segmentation_head_options(self, options: DeepLabV3Options) -> dict[str, Any]:
        upsampling = options.upsampling
        if upsampling is None:
            depth = len(self.encoder.out_channels) - 1
            upsampling = default_upsampling(depth, options.encoder_output_stride)
        return {"in_channels": options.decoder_channels, "kernel_size": 1,
                "upsampling": upsampling}


class DeepLabV3Plus(_DeepLab):
    """DeepLabV3+ from "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
    Segmentation" (https://arxiv.org/abs/1802.02611).

    DeepLabV3's ASPP, upsampled to 1/4 of the input size and fused with the encoder's
    1/4-resolution features by separable convolutions.

    Args:
        encoder_name: encoder to use (``segcore.list_encoders()``); it must support dilation.
        encoder_depth: encoder stages used, 3-5.
        encoder_weights: ``"imagenet"``, another tag of the encoder, a weights file, or
            ``None`` for random initialisation.
        encoder_output_stride: reduction of the deepest encoder features, 8 or 16.
        decoder_channels: convolution filters of the ASPP module and the decoder.
        decoder_atrous_rates: dilation rates of the three atrous ASPP branches.
        in_channels: input channels.
        classes: output mask channels.
        activation: applied to the mask logits: ``"sigmoid"``, ``"softmax"``,
            ``"logsoftmax"``, ``"tanh"``, ``"identity"``, a callable, or ``None``.
        upsampling: final upsampling factor; 4 gives masks of the input size.
        aux_params: classification head on the deepest features: ``classes``, ``pooling``
            (``"avg"``/``"max"``), ``dropout``, ``activation``; ``None`` for none.
        decoder_aspp_separable: depthwise-separable atrous convolutions in ASPP.
        decoder_aspp_dropout: dropout after the ASPP projection, in [0, 1).
        **kwargs: extra arguments of the encoder (``tu-`` timm encoders).

    Input ``(N, in_channels, H, W)`` with ``H`` and ``W`` divisible by the output stride;
    output ``(N, classes, H, W)``, or ``(masks, labels)`` with ``aux_params``.

    Example::

        model = DeepLabV3Plus("resnet34", encoder_weights=None, classes=2,
                              decoder_atrous_rates=(6, 12, 18))
    """

    architecture: ClassVar[str] = "deeplabv3plus"
    options_class = DeepLabV3PlusOptions

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: EncoderWeights = "imagenet",
        encoder_output_stride: int = 16,
        decoder_channels: int = 256,
        decoder_atrous_rates: Iterable[int] = (12, 24, 36),
        in_channels: int = 3,
        classes: int = 1,
        activation: ActivationArgument = None,
        upsampling: int = 4,
        aux_params: Mapping[str, Any] | None = None,
        *,
        decoder_aspp_separable: bool = True,
        decoder_aspp_dropout: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(
        self, encoder_channels: tuple[int, ...], options: DeepLabV3PlusOptions
    ) -> DeepLabV3PlusDecoder:
        return DeepLabV3PlusDecoder(
            encoder_channels=encoder_channels,
            encoder_depth=len(encoder_channels) - 1,
            out_channels=options.decoder_channels,
            atrous_rates=options.decoder_atrous_rates,
            output_stride=options.encoder_output_stride,
            aspp_separable=options.decoder_aspp_separable,
            aspp_dropout=options.decoder_aspp_dropout,
        )

    def segmentation_head_options(self, options: DeepLabV3PlusOptions) -> dict[str, Any]:
        return {"in_channels": options.decoder_channels, "kernel_size": 1,
                "upsampling": options.upsampling}
