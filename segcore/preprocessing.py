"""How input images are normalised for an encoder's pretrained weights.

Example::

    preprocess = segcore.get_preprocessing_fn("resnet34", pretrained="imagenet")
    x = preprocess(image)                    # image: (H, W, 3) uint8 array -> float32 array
    x = preprocess(tensor, channel_axis=1)   # (N, 3, H, W) tensor

What happens is decided from the input's dtype and the explicit channel axis, never from its
values: integer images are scaled by their dtype's range (uint8 by 255, uint16 by 65535, other
integer types by their maximum) into the weights' ``input_range``; floating-point images are
taken as already in that range.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

from segcore.errors import InputTypeError, InvalidOptionError, WeightsError
from segcore.factory import get_encoder_spec
from segcore.weights import resolve_tag

INPUT_SPACES = ("RGB", "BGR")


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
    channel_axis: int | None = None,
    **kwargs: Any,
) -> Any:
    """Normalise an image (or a batch) given as a numpy array or a torch tensor.

    Args:
        x: the image(s); the result is of the same kind (array or tensor, same device).
        mean, std: per-channel statistics of the weights; the result is ``(x - mean) / std``.
        input_space: "RGB", or "BGR" (the channels are reversed first).
        input_range: the range the weights expect, e.g. ``(0, 1)``; ``None`` means ``(0, 1)``.
        channel_axis: the axis holding the channels. ``None`` (the default) is the last one,
            channels-last ``(H, W, C)`` / ``(N, H, W, C)`` as in SMP; pass ``0`` for a
            ``(C, H, W)`` image or ``1`` for an ``(N, C, H, W)`` batch. It must have as many
            entries as ``mean`` and ``std``.
        **kwargs: other keys of a weights' settings dict (``url``, ``input_size``...), ignored.

    The decision to scale comes from the dtype, never from the values: an integer image is
    divided by its dtype's maximum (uint8: 255, uint16: 65535, int16: 32767...) and mapped to
    ``input_range``; a floating-point image is taken as already in ``input_range`` and keeps
    its dtype (an integer image gives float32). Bad inputs raise ``InputTypeError`` (not an
    array or tensor, a bool/complex/object dtype) or ``InvalidOptionError`` (a channel axis
    that does not exist or has the wrong number of channels, a bad ``input_space``).
    """
    _refuse_axis_typos(kwargs)
    is_tensor = isinstance(x, torch.Tensor)
    if not is_tensor:
        x = _as_numpy_image(x)
    mean_values = _statistics("mean", mean)
    std_values = _statistics("std", std)
    if std_values is not None and any(value == 0 for value in std_values):
        raise InvalidOptionError(f"std must not contain 0 (it divides the image), got {std}")
    if input_space not in INPUT_SPACES:
        raise InvalidOptionError(
            f"input_space must be 'RGB' or 'BGR', got {input_space!r}"
        )
    low, high = _input_range(input_range)
    axis = _channel_axis(x, channel_axis, mean_values, std_values)

    if input_space == "BGR":
        x = x.flip(axis) if is_tensor else _numpy().flip(x, axis).copy()
    x = _to_float(x, low, high, is_tensor)
    shape = [1] * x.ndim
    shape[axis] = -1
    if mean_values is not None:
        x = x - _like(x, mean_values, shape, is_tensor)
    if std_values is not None:
        x = x / _like(x, std_values, shape, is_tensor)
    return x


def get_preprocessing_fn(encoder_name: str, pretrained: str = "imagenet") -> Callable[..., Any]:
    """``preprocess_input`` bound to the parameters of the encoder's weights.

    Call it as ``preprocess(image)`` for channels-last images, ``preprocess(x, channel_axis=1)``
    for ``(N, C, H, W)`` tensors.
    """
    return functools.partial(preprocess_input, **get_preprocessing_params(encoder_name, pretrained))


# -- helpers ---------------------------------------------------------------------------------
def _numpy() -> Any:
    import numpy

    return numpy


def _as_numpy_image(x: Any) -> Any:
    """``x`` when it is a numpy array, else ``InputTypeError`` saying how to get one."""
    numpy = _numpy()
    if isinstance(x, numpy.ndarray):
        return x
    if isinstance(x, str | bytes):
        raise InputTypeError(
            f"preprocessing takes an image as a numpy array or torch tensor, got a "
            f"{type(x).__name__} ({x!r}). Load the image first, e.g. "
            f"numpy.asarray(PIL.Image.open(path).convert('RGB'))."
        )
    if x is None:
        raise InputTypeError("preprocessing takes an image as a numpy array or torch tensor, "
                             "got None.")
    hint = ("numpy.asarray(x)" if isinstance(x, list | tuple) or hasattr(x, "__array__")
            else "numpy.asarray(...) or torch.as_tensor(...)")
    raise InputTypeError(
        f"preprocessing takes an image as a numpy array or torch tensor, got "
        f"{type(x).__name__}. Convert it first with {hint}."
    )


def _statistics(name: str, values: Iterable[float] | None) -> list[float] | None:
    if values is None:
        return None
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidOptionError(f"{name} must be a sequence of numbers, got {values!r}")
    result = list(values)
    if not result or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        for v in result
    ):
        raise InvalidOptionError(
            f"{name} must be a non-empty sequence of finite numbers (one per channel), got "
            f"{values!r}"
        )
    return [float(v) for v in result]


def _input_range(input_range: Iterable[float] | None) -> tuple[float, float]:
    if input_range is None:
        return 0.0, 1.0
    values = list(input_range) if isinstance(input_range, Iterable) else []
    if (len(values) != 2 or not all(isinstance(v, numbers.Real) for v in values)
            or not values[0] < values[1]):
        raise InvalidOptionError(
            f"input_range must be (low, high) with low < high, e.g. (0, 1), got {input_range!r}"
        )
    return float(values[0]), float(values[1])


def _channel_axis(
    x: Any, channel_axis: int | None, mean: list[float] | None, std: list[float] | None
) -> int:
    """The channel axis as a non-negative index, checked against ``mean`` and ``std``."""
    shape = tuple(int(size) for size in x.shape)
    if not shape:
        raise InvalidOptionError("preprocessing needs an image, got a 0-dimensional value")
    if channel_axis is None:
        axis = len(shape) - 1
    elif isinstance(channel_axis, bool) or not isinstance(channel_axis, int):
        raise InvalidOptionError(
            f"channel_axis must be an int (-1 for (H, W, C), 0 for (C, H, W), 1 for "
            f"(N, C, H, W)), got {channel_axis!r}"
        )
    elif not -len(shape) <= channel_axis < len(shape):
        raise InvalidOptionError(
            f"channel_axis={channel_axis} does not exist for shape {shape} "
            f"({len(shape)} axes): use -1 for (H, W, C), 0 for (C, H, W), 1 for (N, C, H, W)"
        )
    else:
        axis = channel_axis % len(shape)
    counts = {len(values) for values in (mean, std) if values is not None and len(values) > 1}
    if len(counts) > 1:
        raise InvalidOptionError(
            f"mean and std must have one value per channel, got {len(mean or [])} and "
            f"{len(std or [])}"
        )
    if not counts:
        return axis
    channels = counts.pop()
    if shape[axis] != channels:
        raise InvalidOptionError(_channel_count_message(shape, axis, channels, channel_axis))
    if channel_axis is None and len(shape) in (3, 4) and shape[len(shape) - 3] == channels:
        warnings.warn(
            f"the image shape {shape} could be channels-last or channels-first; normalising "
            f"along the last axis. Pass channel_axis=-1 to confirm, or channel_axis="
            f"{len(shape) - 3} for a channels-first image.",
            UserWarning,
            stacklevel=3,
        )
    return axis


def _channel_count_message(
    shape: tuple[int, ...], axis: int, channels: int, channel_axis: int | None
) -> str:
    given = "the last axis (the default)" if channel_axis is None else f"axis {channel_axis}"
    message = (f"the weights' mean/std have {channels} values, one per channel, but "
               f"{given} of the image shape {shape} has {shape[axis]} entries.")
    others = [index for index, size in enumerate(shape) if size == channels and index != axis]
    if others:
        return f"{message} Pass channel_axis={others[0]} if the channels are there."
    if shape[axis] == 4 and channels == 3:
        return f"{message} For an RGBA image drop the alpha channel first (image[..., :3])."
    if len(shape) == 2:
        return (f"{message} A (H, W) image has no channel axis: convert it to {channels} "
                f"channels (numpy.repeat(image[..., None], {channels}, axis=-1)).")
    return f"{message} Convert the image to {channels} channels, or pass the right channel_axis."


def _to_float(x: Any, low: float, high: float, is_tensor: bool) -> Any:
    """A floating-point ``x``: integers scaled by their dtype's range into ``[low, high]``."""
    if is_tensor:
        dtype = x.dtype
        if dtype.is_floating_point:
            _warn_if_out_of_range(x, low, high)
            return x
        if dtype == torch.bool or dtype.is_complex:
            raise InputTypeError(_dtype_message(str(dtype).removeprefix("torch.")))
        maximum = float(torch.iinfo(dtype).max)
        x = x.to(torch.float32)
    else:
        numpy = _numpy()
        kind = x.dtype.kind
        if kind == "f":
            _warn_if_out_of_range(x, low, high)
            return x
        if kind not in "ui":
            raise InputTypeError(_dtype_message(str(x.dtype)))
        maximum = float(numpy.iinfo(x.dtype).max)
        x = x.astype(numpy.float32)
    scale = (high - low) / maximum
    x = x * scale
    return x + low if low else x


def _warn_if_out_of_range(x: Any, low: float, high: float) -> None:
    """Warn when a floating-point image goes far above ``input_range`` (0-255 data given as
    floats to weights expecting 0-1: SMP used to divide those by 255, segcore does not)."""
    count = x.numel() if isinstance(x, torch.Tensor) else x.size
    if count == 0:
        return
    largest = float(x.max())
    if largest > high + (high - low):
        warnings.warn(
            f"a floating-point image is taken as already in the weights' input range "
            f"[{low:g}, {high:g}], but its values reach {largest:g}. For 8-bit data pass the "
            f"uint8 image (it is scaled by 255), or divide it by 255 first.",
            UserWarning,
            stacklevel=4,
        )


def _dtype_message(dtype: str) -> str:
    return (f"preprocessing takes integer images (scaled by their dtype's range) or "
            f"floating-point images (already in the weights' input range), got dtype {dtype}. "
            f"Convert it first, e.g. x.astype('uint8') or x.astype('float32') for arrays, "
            f"x.to(torch.uint8) or x.float() for tensors.")


def _like(x: Any, values: list[float], shape: list[int], is_tensor: bool) -> Any:
    if is_tensor:
        return torch.as_tensor(values, dtype=x.dtype, device=x.device).reshape(shape)
    return _numpy().asarray(values, dtype=x.dtype).reshape(shape)


def _refuse_axis_typos(kwargs: dict[str, Any]) -> None:
    """Extra keywords are ignored (SMP passes whole settings dicts), except axis typos."""
    wrong = [key for key in kwargs if "axis" in key or "channel" in key]
    if wrong:
        raise InvalidOptionError(
            f"unknown argument(s) {', '.join(map(repr, wrong))} for preprocessing; the "
            f"channel axis is given as channel_axis= (-1 for (H, W, C), 0 for (C, H, W), 1 for "
            f"(N, C, H, W))"
        )
