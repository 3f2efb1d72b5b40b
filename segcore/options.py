"""Validators and converters for architecture option classes (attrs fields).

Example::

    @attrs.frozen
    class DeepLabV3Options(ArchitectureOptions):
        decoder_channels: int = attrs.field(default=256, validator=positive_int)
        decoder_atrous_rates: tuple[int, ...] = attrs.field(
            default=(12, 24, 36), converter=to_tuple, validator=int_sequence(length=3))
        encoder_output_stride: int = attrs.field(default=8, validator=one_of(8, 16))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from segcore.errors import InvalidOptionError
from segcore.nn import norm_params

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def to_tuple(value: Any) -> Any:
    """Lists become tuples (so options are hashable and compare equal); others pass through."""
    if isinstance(value, list):
        return tuple(value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise InvalidOptionError(f"{attribute.name} must be a positive int, got {value!r}")


def optional_positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        positive_int(instance, attribute, value)


def one_of(*choices: Any) -> Validator:
    def validate(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices or (isinstance(value, bool) and True not in choices
                                    and False not in choices):
            raise InvalidOptionError(
                f"{attribute.name} must be one of {', '.join(repr(c) for c in choices)}, "
                f"got {value!r}"
            )

    return validate


def probability(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
        raise InvalidOptionError(f"{attribute.name} must be a number in [0, 1), got {value!r}")


def boolean(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidOptionError(f"{attribute.name} must be True or False, got {value!r}")


def int_sequence(length: int | None = None, minimum: int = 1) -> Validator:
    """A tuple of ints, each at least ``minimum``, optionally of a fixed ``length``."""

    def validate(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, Sequence) or isinstance(value, str) or not all(
            _is_int(v) and v >= minimum for v in value
        ):
            raise InvalidOptionError(
                f"{attribute.name} must be a sequence of ints >= {minimum}, got {value!r}"
            )
        if length is not None and len(value) != length:
            raise InvalidOptionError(
                f"{attribute.name} must have {length} values, got {len(value)}: {value!r}"
            )

    return validate


def norm_option(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A ``use_norm`` value: bool, a normalisation name or a dict (see ``segcore.nn``)."""
    try:
        norm_params(value)
    except InvalidOptionError as error:
        raise InvalidOptionError(f"{attribute.name}: {error}") from None


INTERPOLATION_MODES = ("nearest", "bilinear", "bicubic", "area", "nearest-exact")
interpolation_mode = one_of(*INTERPOLATION_MODES)
