"""From names and options to modules: ``build``, ``get_encoder``, preprocessing."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from segcore.encoder import check_depth, patch_first_conv
from segcore.errors import (
    EncoderCapabilityError,
    InvalidOptionError,
    UnknownOptionError,
    WeightsError,
    did_you_mean,
)
from segcore.registry import get_registry
from segcore.specs import EncoderSpec, load
from segcore.weights import fetch, load_into, load_state_dict, looks_like_path, resolve_tag


def get_encoder_spec(name: str) -> EncoderSpec:
    """The spec of an installed encoder (raises ``UnknownNameError`` with suggestions)."""
    return get_registry().get("encoders", name)


def get_encoder(
    name: str,
    in_channels: int = 3,
    depth: int = 5,
    weights: str | os.PathLike[str] | bool | None = None,
    output_stride: int = 32,
    *,
    needed_by: str | None = None,
    other_options: Iterable[str] = (),
    **kwargs: Any,
) -> nn.Module:
    """Build an encoder alone.

    Args:
        name: encoder name (``"resnet34"``, ``"tu-convnext_tiny"``).
        in_channels: input channels; with pretrained weights the first convolution is adapted.
        depth: number of reductions returned (features: ``depth + 1`` maps, the input first).
        weights: ``None``, a tag of the encoder (``segcore info NAME`` lists them) or a path.
        output_stride: 32, or 16/8 for dilated encoders.
        needed_by, other_options: used in error messages when called for an architecture.
        **kwargs: extra arguments for encoders that take them (timm models).

    Example::

        encoder = segcore.get_encoder("resnet18", in_channels=1, depth=4)
        features = encoder(torch.rand(2, 1, 64, 64))   # 5 maps, reductions 1..16
    """
    spec = get_encoder_spec(name)
    check_depth(depth)
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
        raise InvalidOptionError(f"in_channels must be a positive int, got {in_channels!r}")
    if output_stride not in (8, 16, 32):
        raise InvalidOptionError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    if output_stride != 32 and output_stride >= 2**depth:
        output_stride = 32  # the stages that would be dilated are not used at this depth
    if output_stride != 32 and not spec.supports_dilation:
        who = f"{needed_by} needs" if needed_by else "output_stride"
        raise EncoderCapabilityError(
            f"encoder {name!r} cannot be dilated to output_stride={output_stride} ({who} "
            f"atrous convolution). Choose an encoder that supports dilation, such as "
            f"'resnet34' or a 'tu-' model listed with dilation support "
            f"(`segcore list encoders` marks them)."
        )
    if kwargs and not spec.accepts_kwargs:
        raise _unknown_options(name, kwargs, needed_by, other_options)

    file_path: str | None = None
    tag: str | None = None
    source = None
    if weights is not None and weights is not False and looks_like_path(weights):
        file_path = os.fspath(weights)
    elif weights is not None and weights is not False:
        tag, source = resolve_tag(spec, weights)

    delegated = source is not None and source.delegate
    loads_file = file_path is not None or (source is not None and not delegated)
    factory: Callable[..., nn.Module] = load(spec.factory)
    arguments = dict(spec.params)
    arguments.update(kwargs)
    encoder = factory(
        name=name,
        in_channels=3 if loads_file else in_channels,
        depth=depth,
        output_stride=output_stride,
        weights=tag if delegated else None,
        **arguments,
    )
    if loads_file:
        if file_path is None:
            assert source is not None and tag is not None
            path = fetch(spec, tag, source)
            what = f"weights {tag!r} of encoder {name!r} ({path})"
        else:
            path = file_path
            what = f"weights file {file_path!r}"
        state = load_state_dict(path)
        remap = getattr(encoder, "remap_state_dict", None)
        if remap is not None:
            state = remap(state)
        load_into(encoder, state, what)
        if in_channels != 3:
            set_in_channels = getattr(encoder, "set_in_channels", None)
            if set_in_channels is not None:
                set_in_channels(in_channels, pretrained=True)
            else:
                patch_first_conv(encoder, in_channels, pretrained=True)
    return encoder


def _unknown_options(
    encoder_name: str, kwargs: Mapping[str, Any], needed_by: str | None, others: Iterable[str]
) -> UnknownOptionError:
    others = list(others)
    names = ", ".join(repr(k) for k in kwargs)
    if needed_by:
        hint = "".join(did_you_mean(k, others) for k in kwargs)
        return UnknownOptionError(
            f"unknown option(s) {names} for {needed_by} (encoder {encoder_name!r} takes no extra "
            f"arguments).{hint} Valid options: {', '.join(others)}."
        )
    return UnknownOptionError(
        f"encoder {encoder_name!r} takes no extra arguments, got {names}."
    )


def get_preprocessing_params(encoder_name: str, pretrained: str = "imagenet") -> dict[str, Any]:
    """How inputs must be normalised for an encoder's pretrained weights.

    Returns ``{"input_space", "input_range", "mean", "std"}``.
    """
    spec = get_encoder_spec(encoder_name)
    try:
        _, source = resolve_tag(spec, pretrained)
    except WeightsError as error:
        raise type(error)(f"no preprocessing parameters: {error}") from None
    return source.preprocessing.as_dict()


def preprocess_input(
    x: Any,
    mean: Iterable[float] | None = None,
    std: Iterable[float] | None = None,
    input_space: str = "RGB",
    input_range: Iterable[float] | None = None,
    **_: Any,
) -> Any:
    """Normalise an image array or tensor whose channels come last (``H, W, C``).

    BGR weights get their channels reversed; 0-255 input is scaled to 0-1 when the weights
    expect 0-1; then ``(x - mean) / std``. Works with numpy arrays and torch tensors.
    """
    if input_space == "BGR":
        x = x[..., ::-1].copy() if hasattr(x, "copy") and not isinstance(x, torch.Tensor) \
            else x.flip(-1)
    if input_range is not None and list(input_range)[1] == 1 and x.max() > 1:
        x = x / 255.0
    if mean is not None:
        x = x - _like(x, mean)
    if std is not None:
        x = x / _like(x, std)
    return x


def _like(x: Any, values: Iterable[float]) -> Any:
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(list(values), dtype=x.dtype if x.is_floating_point() else None,
                               device=x.device)
    import numpy

    return numpy.asarray(list(values))


def get_preprocessing_fn(encoder_name: str, pretrained: str = "imagenet") -> Callable[[Any], Any]:
    """``preprocess_input`` bound to the parameters of the encoder's weights."""
    return functools.partial(preprocess_input, **get_preprocessing_params(encoder_name, pretrained))


def get_architecture_class(name: str) -> type:
    """The model class of an installed architecture (``"unet"`` -> ``Unet``)."""
    spec = get_registry().get("architectures", name)
    return load(spec.model)


def build(
    architecture: str,
    encoder: str = "resnet34",
    encoder_weights: str | os.PathLike[str] | bool | None = None,
    encoder_depth: int = 5,
    in_channels: int = 3,
    classes: int = 1,
    activation: str | Callable[..., nn.Module] | None = None,
    aux_params: Mapping[str, Any] | None = None,
    **architecture_options: Any,
) -> nn.Module:
    """Build a segmentation model from names.

    Unlike the class constructors, ``encoder_weights`` defaults to ``None`` (no download).

    Args:
        architecture: ``segcore.list_architectures()`` (``"unet"``, ``"deeplabv3plus"``...).
        encoder: ``segcore.list_encoders()`` or ``"tu-<timm model>"``.
        encoder_weights: ``None``, a tag, or a weights file.
        encoder_depth: reductions used, 3-5.
        in_channels, classes: input and output channels.
        activation: applied to the mask logits (``"sigmoid"``, ``"softmax"``...).
        aux_params: classification head options (``classes``, ``pooling``, ``dropout``,
            ``activation``).
        **architecture_options: the architecture's own options (``segcore info unet``).

    Example::

        model = segcore.build("unet", encoder="resnet34", classes=3)
        mask = model(torch.rand(1, 3, 64, 64))   # (1, 3, 64, 64)
    """
    model_class = get_architecture_class(architecture)
    return model_class(
        encoder_name=encoder,
        encoder_weights=encoder_weights,
        encoder_depth=encoder_depth,
        in_channels=in_channels,
        classes=classes,
        activation=activation,
        aux_params=aux_params,
        **architecture_options,
    )
