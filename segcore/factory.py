"""From names and options to modules: ``build`` (a whole model) and ``get_encoder``."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from segcore.encoder import check_depth, patch_first_conv
from segcore.errors import (
    EncoderCapabilityError,
    InvalidOptionError,
    UnknownOptionError,
    WeightsFileError,
    did_you_mean,
)
from segcore.registry import get_registry
from segcore.specs import EncoderSpec
from segcore.weights import fetch, load_into, load_state_dict, looks_like_path, resolve_tag


def get_encoder_spec(name: str) -> EncoderSpec:
    """The spec of an installed encoder (raises ``UnknownNameError`` with suggestions)."""
    return get_registry().get("encoders", name)


#: Keyword arguments never passed on to an encoder factory (from a user or a saved config):
#: they make a library read files or fetch weights (timm's ``checkpoint_path``...).
UNSAFE_ENCODER_KWARGS = frozenset({
    "checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict",
    "cache_dir", "state_dict", "hf_hub_id", "url", "file", "path",
})
_UNSAFE_SUFFIXES = ("_file", "_path", "_dir", "_url", "_cfg", "_filename")
_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors", ".pkl", ".pickle", ".npz")


def check_encoder_kwargs(encoder_name: str, kwargs: Mapping[str, Any]) -> None:
    """Refuse encoder keyword arguments that would load files or run code.

    Only plain values (numbers, booleans, short strings, lists/tuples of them, ``None``) pass,
    and no key that names a file, a path, a URL or a pretrained configuration. This guards
    ``encoder_params`` read from an untrusted ``config.json`` as well as user arguments.
    """
    for key, value in kwargs.items():
        lowered = str(key).lower()
        if lowered in UNSAFE_ENCODER_KWARGS or lowered.endswith(_UNSAFE_SUFFIXES) or \
                lowered.startswith("pretrained_cfg"):
            raise UnknownOptionError(
                f"encoder {encoder_name!r}: option {key!r} is refused: it would make the encoder "
                f"read a file or fetch weights. Load weights with encoder_weights=<tag or file> "
                f"(safetensors or a tensors-only .pth), never through encoder options."
            )
        _check_plain_value(encoder_name, key, value)


def _check_plain_value(encoder_name: str, key: str, value: Any) -> None:
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if len(value) > 200 or "/" in value or "\\" in value or \
                value.lower().endswith(_FILE_SUFFIXES):
            raise InvalidOptionError(
                f"encoder {encoder_name!r}: option {key}={value!r} looks like a path; encoder "
                f"options take plain values (numbers, names). Load weights with "
                f"encoder_weights instead."
            )
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain_value(encoder_name, key, item)
        return
    raise InvalidOptionError(
        f"encoder {encoder_name!r}: option {key!r} must be a number, bool, string, None or a "
        f"list of them, got {type(value).__name__}"
    )


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

    The core owns the set-up: the spec's factory constructs the encoder (3 input channels,
    output stride 32); then weights are loaded, the first convolution is adapted to
    ``in_channels`` and the deep stages are dilated (encoders declared ``native_setup``, timm
    models, build the last two themselves).

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
    entry = get_registry().entry("encoders", name)
    spec: EncoderSpec = entry.spec
    if name in spec.aliases:
        name = spec.name  # another spelling: the canonical name names cache files and messages
    check_depth(depth)
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
        raise InvalidOptionError(f"in_channels must be a positive int, got {in_channels!r}")
    if output_stride not in (8, 16, 32) or isinstance(output_stride, bool):
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
    check_encoder_kwargs(name, kwargs)

    file_path: str | None = None
    tag: str | None = None
    source = None
    if weights is not None and weights is not False and looks_like_path(weights):
        file_path = os.fspath(weights)
    elif weights is not None and weights is not False:
        tag, source = resolve_tag(spec, weights)

    folder_state: dict[str, Any] | None = None
    saved_channels = 3  # the input channels of the weights to load
    if file_path is not None and _is_model_folder(file_path):
        from segcore.model import encoder_state_from_folder

        folder_state, saved_channels = encoder_state_from_folder(file_path, name)
        if saved_channels not in (3, in_channels):
            raise WeightsFileError(
                f"{file_path!r} holds a model that takes {saved_channels} input channels; "
                f"its encoder initialises an encoder with in_channels={saved_channels} (or 3 "
                f"when it was saved with 3), not {in_channels}."
            )
    delegated = source is not None and source.delegate
    loads_file = file_path is not None or (source is not None and not delegated)
    factory: Callable[..., nn.Module] = entry.load("factory", "encoders")
    arguments: dict[str, Any] = {"name": name, "depth": depth, **spec.params, **kwargs}
    if delegated:
        arguments["weights"] = tag
    if spec.native_setup:
        arguments["in_channels"] = saved_channels if loads_file else in_channels
        arguments["output_stride"] = output_stride
    else:
        arguments.update(_legacy_setup_arguments(factory, entry))
    encoder = factory(**arguments)
    if loads_file:
        if saved_channels != 3 and not spec.native_setup:
            _adapt_input(encoder, saved_channels, pretrained=False)
        if folder_state is not None:
            path, what = file_path, f"the encoder of the model in {file_path!r}"
        elif file_path is None:
            assert source is not None and tag is not None
            path = fetch(spec, tag, source)
            what = f"weights {tag!r} of encoder {name!r} ({path})"
        else:
            path = file_path
            what = f"weights file {file_path!r}"
        state = folder_state if folder_state is not None else load_state_dict(path)
        remap = getattr(encoder, "remap_state_dict", None)
        if remap is not None:
            state = remap(state)
        load_into(encoder, state, what)
    built_with = saved_channels if loads_file else (in_channels if spec.native_setup else 3)
    if in_channels != built_with:
        _adapt_input(encoder, in_channels, pretrained=loads_file)
    if output_stride != 32 and not spec.native_setup:
        _dilate(encoder, name, entry, output_stride)
    return encoder


def _legacy_setup_arguments(factory: Callable[..., Any], entry: Any) -> dict[str, Any]:
    """``in_channels=3, output_stride=32`` for factories written before contract 1.0.

    Such factories took both and adapted the encoder themselves; the core now does it after
    construction, so they are asked for the plain encoder (and warned).
    """
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    legacy = [p for p in ("in_channels", "output_stride") if p in parameters]
    if not legacy:
        return {}
    warnings.warn(
        f"the factory of encoder {entry.spec.name!r} ({entry.spec.factory}, plugin "
        f"{entry.plugin!r}) takes {' and '.join(legacy)}: since segcore contract 1.0 the core "
        f"adapts the input channels and dilates after construction. Remove those parameters, "
        f"or declare native_setup=True in the EncoderSpec if the factory builds them in.",
        DeprecationWarning,
        stacklevel=4,
    )
    return {"in_channels": 3, "output_stride": 32}


def _is_model_folder(path: str) -> bool:
    """Whether ``path`` is a folder written by ``save_pretrained`` (segcore's or SMP's)."""
    folder = Path(path).expanduser()
    return folder.is_dir() and (folder / "config.json").is_file()


def _adapt_input(encoder: nn.Module, in_channels: int, pretrained: bool) -> None:
    set_in_channels = getattr(encoder, "set_in_channels", None)
    if set_in_channels is not None:
        set_in_channels(in_channels, pretrained=pretrained)
    else:
        patch_first_conv(encoder, in_channels, pretrained=pretrained)


def _dilate(encoder: nn.Module, name: str, entry: Any, output_stride: int) -> None:
    make_dilated = getattr(encoder, "make_dilated", None)
    problem = None
    if make_dilated is None:
        problem = f"{type(encoder).__name__} has no make_dilated method"
    else:
        try:
            make_dilated(output_stride)
        except (NotImplementedError, EncoderCapabilityError) as error:
            problem = f"{type(error).__name__}: {error}".rstrip(": ")
    if problem is not None:
        raise EncoderCapabilityError(
            f"encoder {name!r} (plugin {entry.plugin!r}) declares supports_dilation=True but "
            f"cannot be dilated to output_stride={output_stride} ({problem}). Use "
            f"output_stride=32 / an architecture that needs no dilation; the plugin should "
            f"declare supports_dilation=False or implement get_stages()."
        )


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


def get_architecture_class(name: str) -> type:
    """The model class of an installed architecture (``"unet"`` -> ``Unet``)."""
    return get_registry().load("architectures", name, "model")


def build(
    architecture: str,
    encoder: str = "resnet34",
    encoder_weights: str | os.PathLike[str] | bool | None = None,
    encoder_depth: int | None = None,
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
        encoder_depth: reductions used, 3-5; ``None`` takes the architecture's default (5 for
            most, 3 for PSPNet).
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
    if "encoder_name" in architecture_options:
        raise InvalidOptionError(
            f"build() takes the encoder as encoder=..., not encoder_name="
            f"{architecture_options['encoder_name']!r} (the class constructors' and SMP's "
            "spelling): segcore.build('unet', encoder='resnet34'), or "
            "segcore.smp.create_model('unet', encoder_name='resnet34') for SMP's signature")
    if encoder_depth is not None:
        architecture_options["encoder_depth"] = encoder_depth
    return model_class(
        encoder_name=encoder,
        encoder_weights=encoder_weights,
        in_channels=in_channels,
        classes=classes,
        activation=activation,
        aux_params=aux_params,
        **architecture_options,
    )
