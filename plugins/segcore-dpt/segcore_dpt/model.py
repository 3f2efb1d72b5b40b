"""``DPT``: timm ViT encoder -> DPT decoder -> DPT segmentation head (+ classification head)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from segcore.errors import ConfigurationWarning, InputShapeError, InvalidOptionError
from segcore.model import SegmentationModel
from segcore_dpt.decoder import DPTDecoder, DPTSegmentationHead
from segcore_dpt.encoder import TimmViTEncoder, build_encoder
from segcore_dpt.options import DPTOptions


class DPT(SegmentationModel):
    """Dense Prediction Transformer (https://arxiv.org/abs/2103.13413) on a ViT encoder.

    The token maps of ``encoder_depth`` transformer blocks, with the class token joined to the
    patch tokens as ``decoder_readout`` says, are projected to
    ``decoder_intermediate_channels``, resampled by transposed or strided convolutions to
    reductions 4, 8, 16 and 32 (one per block, shallowest finest) and projected to
    ``decoder_fusion_channels``. Starting from the coarsest, each fusion stage refines its
    map with two residual convolution units, adds the coarser fused result, upsamples 2x
    bilinearly and applies a 1x1 convolution, so the last stage is at half the input size.
    The head's 3x3 conv-BatchNorm-ReLU, dropout and 1x1 convolution give the class logits,
    and a bilinear 2x upsampling brings the mask to the input size.

    Args:
        encoder_name: a timm model as ``"tu-<timm model>"``, with ``forward_intermediates``
            (Vision Transformers; timm CNNs such as "tu-resnet18" work too, without prefix
            tokens). Other segcore encoders are refused: DPT reads transformer tokens.
            Default "tu-vit_base_patch16_224.augreg_in21k".
        encoder_depth: number of transformer blocks read, from 1 to the model's block count;
            default 4. ``decoder_intermediate_channels`` (and ``encoder_output_indices``)
            need one value per block read.
        encoder_weights: "imagenet" or ``True`` (timm's pretrained weights for the model;
            the tag in the name, ".augreg_in21k", picks which; default "imagenet"), a weights
            file (safetensors or tensors-only ``.pth``) or ``None`` for random
            initialisation.
        encoder_output_indices: the blocks read (``encoder_depth`` increasing indices,
            negative ones counting from the last block), or ``None`` (default) to sample them
            uniformly: blocks 2, 5, 8, 11 of a 12-block ViT at depth 4.
        decoder_readout: "cat" (default; the class token is concatenated to every patch token
            and a Linear + GELU projects back), "add" (the mean of the prefix tokens is added)
            or "ignore" (prefix tokens are dropped). Encoders without prefix tokens should
            use "ignore"; "cat" and "add" then warn.
        decoder_intermediate_channels: channels of each reassembly block while it resamples
            (shallowest block first); positive ints, one per encoder stage; default
            (256, 512, 1024, 1024).
        decoder_fusion_channels: channels of the fusion stages and of the head; a positive
            int, default 256.
        in_channels: channels of the input images (default 3).
        classes: channels of the output mask (default 1).
        activation: applied to the mask: ``None`` (logits; default), "sigmoid", "softmax",
            "logsoftmax", "tanh", "identity" or a callable returning a module.
        aux_params: options of a classification head on the deepest feature map
            (``classes``, ``pooling`` "avg"/"max", ``dropout``, ``activation``); the model
            then returns ``(mask, labels)``. ``None`` (default): no such head.
        **kwargs: arguments for ``timm.create_model`` (``dynamic_img_size=True`` for inputs
            of any size, ``img_size=512``, ``drop_path_rate=0.1``...); an unknown
            ``decoder_*`` name is refused with the closest valid option.

    Shapes:
        input ``(N, in_channels, H, W)`` -> mask ``(N, classes, H, W)``; labels
        ``(N, aux classes)`` with ``aux_params``. The decoder needs ``H`` and ``W`` to be
        multiples of ``model.input_divisor()``: the patch size and the reduction of the
        coarsest reassembled map, ``4 * 2 ** (encoder_depth - 1)`` (32 for a patch-16 ViT at
        depth 4). With ``dynamic_img_size=True`` other sizes are padded (bottom and right)
        to the next multiple and the mask is cropped back; a ViT built without it takes only
        its ``img_size``, and smaller inputs are padded to it.

    Example::

        model = DPT("tu-vit_small_patch16_224", encoder_weights=None, classes=3,
                    dynamic_img_size=True)
        mask = model(torch.rand(2, 3, 256, 320))   # (2, 3, 256, 320)
    """

    #: torch.jit.script refuses it (as SMP's); docs/export.md
    _is_torch_scriptable = False

    architecture: ClassVar[str] = "dpt"
    options_class = DPTOptions
    requires_divisible_input_shape: ClassVar[bool] = True
    min_encoder_depth: ClassVar[int] = 1

    encoder: TimmViTEncoder
    decoder: DPTDecoder

    def __init__(
        self,
        encoder_name: str = "tu-vit_base_patch16_224.augreg_in21k",
        encoder_depth: int = 4,
        encoder_weights: str | os.PathLike[str] | bool | None = "imagenet",
        encoder_output_indices: Sequence[int] | None = None,
        decoder_readout: str = "cat",
        decoder_intermediate_channels: Sequence[int] = (256, 512, 1024, 1024),
        decoder_fusion_channels: int = 256,
        in_channels: int = 3,
        classes: int = 1,
        activation: str | Callable[..., nn.Module] | None = None,
        aux_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        arguments = self.constructor_arguments(locals())
        # SegmentationModel.__init__ builds its encoder through the encoder registry; DPT needs
        # the whole timm model (tokens and prefix tokens), so it sets the same attributes here.
        nn.Module.__init__(self)
        _check_depth(encoder_depth)
        self._check_common_arguments(in_channels, classes, activation, aux_params)
        options = DPTOptions.from_options(
            "dpt",
            encoder_output_indices=encoder_output_indices,
            decoder_readout=decoder_readout,
            decoder_intermediate_channels=decoder_intermediate_channels,
            decoder_fusion_channels=decoder_fusion_channels,
        )
        options.check(encoder_depth)
        self.options = options
        self._in_channels = in_channels
        self._is_encoder_frozen = False
        #: DPT's encoder is not a registry encoder, so it has no spec
        self.encoder_spec = None

        self.encoder = build_encoder(
            encoder_name,
            in_channels=in_channels,
            depth=encoder_depth,
            weights=encoder_weights,
            output_indices=options.encoder_output_indices,
            timm_options=kwargs,
        )
        if not self.encoder.has_prefix_tokens and options.decoder_readout != "ignore":
            warnings.warn(
                f"encoder {encoder_name!r} has no prefix tokens (class or register tokens), so "
                f"decoder_readout={options.decoder_readout!r} has nothing to read; use "
                f"decoder_readout='ignore' with it.",
                ConfigurationWarning,
                stacklevel=2,
            )
        self.decoder = DPTDecoder(
            encoder_out_channels=self.encoder.out_channels,
            encoder_output_strides=self.encoder.output_strides,
            encoder_has_prefix_tokens=self.encoder.has_prefix_tokens,
            readout=options.decoder_readout,
            intermediate_channels=options.decoder_intermediate_channels,
            fusion_channels=options.decoder_fusion_channels,
        )
        fixed = self.encoder.fixed_input_size
        divisor = self.decoder.input_divisor
        if fixed is not None and (fixed[0] % divisor or fixed[1] % divisor):
            raise InvalidOptionError(
                f"encoder {encoder_name!r} takes only {fixed[0]}x{fixed[1]} inputs, but the DPT "
                f"decoder at encoder_depth={encoder_depth} needs multiples of {divisor}: build "
                f"it with img_size a multiple of {divisor}, or with dynamic_img_size=True."
            )
        self.segmentation_head = DPTSegmentationHead(
            in_channels=options.decoder_fusion_channels,
            out_channels=classes,
            activation=activation,
            kernel_size=3,
            upsampling=2,
        )
        self._finish_build(arguments, options)

    # -- input sizes ---------------------------------------------------------------------
    def input_divisor(self) -> int:
        """What H and W must be multiples of: the least common multiple of the encoder's
        reductions (the patch size) and of the coarsest reassembled map's reduction,
        ``4 * 2 ** (encoder_depth - 1)`` (32 for a patch-16 ViT at depth 4; SMP only checks
        the patch size, and sizes between fail in the decoder)."""
        return int(self.decoder.input_divisor)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The size an ``height x width`` input is padded to: the encoder's fixed input size,
        or the next multiples of ``input_divisor()``."""
        fixed = self.encoder.fixed_input_size
        if fixed is not None:
            return fixed
        divisor = self.input_divisor()
        return -(-height // divisor) * divisor, -(-width // divisor) * divisor

    def check_input_shape(self, x: torch.Tensor) -> None:
        """As ``SegmentationModel.check_input_shape``; a ViT built without
        ``dynamic_img_size`` also refuses inputs larger than its ``img_size`` (and, with
        ``pad_inputs=False``, any other size)."""
        super().check_input_shape(x)
        fixed = self.encoder.fixed_input_size
        if fixed is None:
            return
        height, width = int(x.shape[-2]), int(x.shape[-1])
        too_large = height > fixed[0] or width > fixed[1]
        if too_large or (not self.pad_inputs and (height, width) != fixed):
            allowed = "only" if not self.pad_inputs else "at most"
            raise InputShapeError(
                f"{self.name}: the encoder was built for {fixed[0]}x{fixed[1]} images and takes "
                f"{allowed} that size, got {height}x{width}. Resize the images, build the model "
                f"with img_size=(H, W) or with dynamic_img_size=True (any size then works)."
            )

    # -- forward -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not _compiling():
            self.check_input_shape(x)
            self.check_input_dtype(x)
        # Shapes stay symbolic (no int(), no comparison of sizes): torch.export and ONNX
        # export then keep height and width dynamic. Padding by zero rows is a no-op.
        height, width = x.shape[-2], x.shape[-1]
        if self.pad_inputs:
            fixed = self.encoder.fixed_input_size
            if fixed is None:
                divisor = self.input_divisor()
                padded_height = (height + divisor - 1) // divisor * divisor
                padded_width = (width + divisor - 1) // divisor * divisor
            else:
                padded_height, padded_width = fixed
            x = F.pad(x, (0, padded_width - width, 0, padded_height - height))
        features, prefix_tokens = self.encoder(x)
        masks = self.segmentation_head(self.decoder(features, prefix_tokens))
        if self.pad_inputs:
            masks = masks[..., :height, :width]
        if self.classification_head is not None:
            return masks, self.classification_head(features[-1])
        return masks

    # -- not used: DPT builds its encoder and decoder itself -----------------------------
    def build_decoder(self, encoder_channels: tuple[int, ...], options: Any) -> nn.Module:
        raise NotImplementedError("DPT builds its decoder in __init__ (it needs the strides)")

    def segmentation_head_options(self, options: Any) -> dict[str, Any]:
        return {"in_channels": options.decoder_fusion_channels, "kernel_size": 3,
                "upsampling": 2}


def _compiling() -> bool:
    return bool(torch.jit.is_scripting() or torch.jit.is_tracing()
                or torch.compiler.is_compiling())


def _check_depth(depth: Any) -> None:
    """At least one block; the upper bound (the model's block count) is checked by the
    encoder."""
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise InvalidOptionError(
            f"encoder_depth must be an int (the number of transformer blocks read, at least 1), "
            f"got {depth!r}"
        )
    if depth < DPT.min_encoder_depth:
        raise InvalidOptionError(
            f"encoder_depth={depth} is too small: the dpt decoder needs at least "
            f"{DPT.min_encoder_depth} encoder stage (transformer block). Use encoder_depth=1 "
            f"or more (4 by default)."
        )
