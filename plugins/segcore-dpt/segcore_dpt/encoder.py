"""The encoder of DPT: a whole timm model read through ``forward_intermediates``.

DPT reads the tokens of several blocks of a Vision Transformer (all at the patch size's
reduction) together with the prefix tokens (class and register tokens), which the core's
``tu-`` feature extractors do not return. The timm model lives in ``self.model`` (as in SMP's
``TimmViTEncoder``), so SMP checkpoints (encoder keys ``model.*``) load with ``strict=True``.

This module imports timm; the plugin imports it only when a DPT model is built.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import timm
import torch
from torch import nn

from segcore.encoder import patch_first_conv
from segcore.errors import (
    EncoderCapabilityError,
    InvalidOptionError,
    UnknownNameError,
    UnknownOptionError,
    UnknownWeightsError,
    WeightsNotFoundError,
    did_you_mean,
)
from segcore.factory import check_encoder_kwargs
from segcore.options import check_reserved_timm_options
from segcore.weights import load_into, load_state_dict, looks_like_path

PREFIX = "tu-"
#: the tag that means "timm's pretrained weights for this model" (the name's tag picks which)
WEIGHTS_TAG = "imagenet"
#: ``timm.create_model`` arguments the encoder sets itself, and what to use instead
RESERVED_TIMM_OPTIONS = {
    "in_chans": "use in_channels instead",
    "pretrained": "use encoder_weights (None, True, 'imagenet' or a weights file) instead",
    "features_only": "DPT reads the whole model through forward_intermediates",
    "out_indices": "use encoder_output_indices instead",
    "output_stride": "DPT does not dilate its encoder",
}
#: ViTs suggested when the requested model cannot be a DPT encoder
SUGGESTED_MODELS = ("tu-vit_base_patch16_224.augreg_in21k", "tu-vit_small_patch16_224",
                    "tu-vit_tiny_patch16_224")


def sample_block_indices(count: int, blocks: int) -> list[int]:
    """``count`` block indices spread evenly over ``blocks`` blocks, the last block last
    (4 of 12 blocks: 2, 5, 8, 11)."""
    return [blocks * step // count - 1 for step in range(1, count + 1)]


class TimmViTEncoder(nn.Module):
    """A timm model whose intermediate blocks give DPT its feature maps and prefix tokens.

    ``forward(x)`` returns ``(features, prefix_tokens)``: ``depth`` maps
    ``(N, C_i, H / s_i, W / s_i)`` (one per sampled block, shallowest first) and, per map, the
    prefix tokens ``(N, T, C_i)`` (``None`` for models without them).

    Args:
        name: timm model name, with or without the ``"tu-"`` prefix
            (``"vit_base_patch16_224.augreg_in21k"``).
        in_channels: input channels (timm builds the patch embedding for them).
        depth: number of blocks read (at least 1, at most the model's block count).
        pretrained: let timm load its pretrained weights (downloads them when not cached).
        output_indices: the blocks read (``depth`` increasing indices, negative ones from
            the end) or ``None`` to sample them uniformly.
        timm_options: more arguments for ``timm.create_model`` (``img_size=512``,
            ``dynamic_img_size=True``, ``drop_path_rate=0.1``...).

    Attributes:
        out_channels, output_strides: channels and reduction of each map.
        output_stride: the reduction of the last map (SMP's attribute).
        has_prefix_tokens: whether the model has class or register tokens.
        fixed_input_size: ``(H, W)`` the model only accepts (a ViT built without
            ``dynamic_img_size``), or ``None`` when other sizes work.
    """

    # SMP 0.6.0's flags: the ViT feature extraction does not script
    _is_torch_scriptable = False
    _is_torch_exportable = True
    _is_torch_compilable = True

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        depth: int = 4,
        pretrained: bool = False,
        output_indices: Sequence[int] | None = None,
        timm_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        timm_name = name.removeprefix(PREFIX)
        options = dict(timm_options or {})
        check_reserved_timm_options(options, RESERVED_TIMM_OPTIONS, "DPT encoder")
        self.model = _create_model(timm_name, in_channels, pretrained, options)
        if not callable(getattr(self.model, "forward_intermediates", None)) or not getattr(
            self.model, "feature_info", None
        ):
            raise EncoderCapabilityError(
                f"encoder {PREFIX + timm_name!r}: timm model {type(self.model).__name__} has no "
                f"forward_intermediates() / feature_info, which DPT reads its features with. "
                f"Update timm or use a Vision Transformer such as "
                f"{', '.join(map(repr, SUGGESTED_MODELS))}."
            )
        feature_info = self.model.feature_info
        blocks = len(feature_info)
        if depth > blocks:
            raise InvalidOptionError(
                f"encoder_depth={depth} is too large: encoder {PREFIX + timm_name!r} has "
                f"{blocks} blocks to read features from. Use encoder_depth=1 to {blocks}."
            )
        indices = _block_indices(output_indices, depth, blocks, PREFIX + timm_name)

        self.name = timm_name
        self.depth = depth
        self.in_channels = in_channels
        self.output_indices = tuple(indices)
        self.out_channels = tuple(int(feature_info[i]["num_chs"]) for i in indices)
        self.output_strides = tuple(int(feature_info[i]["reduction"]) for i in indices)
        self.output_stride = self.output_strides[-1]
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0) or 0)
        self.has_prefix_tokens = self.num_prefix_tokens > 0
        self.fixed_input_size = _fixed_input_size(self.model)
        # SMP's names for the same facts (SMP reads them from the pretrained config)
        self.is_fixed_input_size = self.fixed_input_size is not None
        self.input_size = (in_channels, *self.fixed_input_size) if self.fixed_input_size \
            else None

    def forward(
        self, x: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        indices = list(self.output_indices)
        if not self.has_prefix_tokens:
            features = self.model.forward_intermediates(
                x, indices=indices, intermediates_only=True
            )
            return list(features), [None] * len(features)
        outputs = self.model.forward_intermediates(
            x, indices=indices, intermediates_only=True, return_prefix_tokens=True
        )
        return [output[0] for output in outputs], [output[1] for output in outputs]


def build_encoder(
    name: str,
    *,
    in_channels: int = 3,
    depth: int = 4,
    weights: str | os.PathLike[str] | bool | None = None,
    output_indices: Sequence[int] | None = None,
    timm_options: Mapping[str, Any] | None = None,
) -> TimmViTEncoder:
    """The DPT encoder for ``"tu-<timm model>"``, with its weights.

    ``weights``: ``None``/``False`` (random), ``True`` or ``"imagenet"`` (timm's pretrained
    weights; the tag in the name, ``"tu-vit_base_patch16_224.augreg_in21k"``, picks which), or
    a weights file (safetensors or tensors-only ``.pth``) with the encoder's keys (``model.*``)
    or timm's.
    """
    if not isinstance(name, str) or not name.startswith(PREFIX):
        raise EncoderCapabilityError(
            f"DPT reads the tokens of a timm Vision Transformer, so its encoder must be a "
            f"'tu-<timm model>' name, got {name!r}. Use e.g. "
            f"{', '.join(map(repr, SUGGESTED_MODELS))}."
        )
    options = dict(timm_options or {})
    check_encoder_kwargs(name, options)
    path: str | None = None
    pretrained = False
    if weights is not None and weights is not False and looks_like_path(weights):
        path = os.fspath(weights)
    elif weights is True or weights == WEIGHTS_TAG:
        pretrained = True
    elif weights is not None and weights is not False:
        raise UnknownWeightsError(
            f"encoder {name!r} takes encoder_weights=None, True, {WEIGHTS_TAG!r} (timm's "
            f"pretrained weights) or a weights file, got {weights!r}. Pick other timm weights "
            f"with the tag in the name: 'tu-<model>.<tag>'."
        )
    encoder = TimmViTEncoder(
        name,
        in_channels=3 if path is not None else in_channels,
        depth=depth,
        pretrained=pretrained,
        output_indices=output_indices,
        timm_options=options,
    )
    if path is not None:
        state = load_state_dict(path)
        if not any(key.startswith("model.") for key in state):
            state = {f"model.{key}": value for key, value in state.items()}
        load_into(encoder, state, f"weights file {path!r}")
        if in_channels != 3:
            patch_first_conv(encoder.model, in_channels, pretrained=True)
            encoder.in_channels = in_channels
            if encoder.input_size is not None:
                encoder.input_size = (in_channels, *encoder.input_size[1:])
    return encoder


def _create_model(
    timm_name: str, in_channels: int, pretrained: bool, options: Mapping[str, Any]
) -> nn.Module:
    """``timm.create_model`` with errors that say what to change."""
    name = PREFIX + timm_name
    if not timm.is_model(timm_name):
        hint = did_you_mean(name, (PREFIX + model for model in timm.list_models()))
        raise UnknownNameError(f"timm has no model {timm_name!r} (encoder {name!r}).{hint}")
    try:
        return timm.create_model(timm_name, in_chans=in_channels, pretrained=pretrained,
                                 **options)
    except TypeError as error:
        unexpected = [key for key in options if f"'{key}'" in str(error)]
        if "unexpected keyword" in str(error) and unexpected:
            raise UnknownOptionError(
                f"encoder {name!r}: timm model {timm_name!r} does not take option(s) "
                f"{', '.join(repr(k) for k in unexpected)} ({error})."
            ) from error
        raise
    except OSError as error:
        if not pretrained:
            raise
        raise WeightsNotFoundError(
            f"encoder {name!r}: timm could not get its pretrained weights "
            f"({type(error).__name__}: {error}). timm downloads them from the Hugging Face hub "
            f"into its cache (HF_HOME); on an offline machine copy that cache from a machine "
            f"with internet, or pass encoder_weights=None for random initialisation."
        ) from error


def _block_indices(
    indices: Sequence[int] | None, depth: int, blocks: int, name: str
) -> list[int]:
    """The blocks read, as increasing non-negative indices (``InvalidOptionError`` else)."""
    if indices is None:
        return sample_block_indices(depth, blocks)
    if len(indices) != depth:
        raise InvalidOptionError(
            f"encoder_output_indices must name one block per encoder stage: encoder_depth="
            f"{depth} needs {depth} indices, got {len(indices)} {tuple(indices)}"
        )
    outside = [index for index in indices if not -blocks <= index < blocks]
    if outside:
        raise InvalidOptionError(
            f"encoder_output_indices {tuple(indices)}: {outside} out of range; encoder {name!r} "
            f"has {blocks} blocks, so indices go from {-blocks} to {blocks - 1}."
        )
    result = [index % blocks for index in indices]
    if any(later <= earlier for earlier, later in itertools.pairwise(result)):
        raise InvalidOptionError(
            f"encoder_output_indices {tuple(indices)} must name different blocks in increasing "
            f"order (shallowest first), as timm returns them: e.g. {tuple(sorted(set(result)))}."
        )
    return result


def _fixed_input_size(model: nn.Module) -> tuple[int, int] | None:
    """The only ``(H, W)`` a model takes (a ViT's patch embedding checks it), else ``None``."""
    patch_embed = getattr(model, "patch_embed", None)
    size = getattr(patch_embed, "img_size", None)
    if patch_embed is None or not getattr(patch_embed, "strict_img_size", False) or size is None:
        return None
    return int(size[0]), int(size[1])
