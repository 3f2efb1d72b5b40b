"""Architecture options: the ``ArchitectureOptions`` base class and the validators and
converters of its attrs fields.

Example::

    @attrs.frozen
    class DeepLabV3Options(ArchitectureOptions):
        decoder_channels: int = attrs.field(default=256, validator=positive_int)
        decoder_atrous_rates: tuple[int, ...] = attrs.field(
            default=(12, 24, 36), converter=to_tuple, validator=int_sequence(length=3))
        encoder_output_stride: int = attrs.field(default=8, validator=one_of(8, 16))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from segcore.errors import InvalidOptionError, UnknownOptionError, did_you_mean
from segcore.nn import NormOption, make_norm, norm_params

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def to_tuple(value: Any) -> Any:
    """Lists become tuples (so options are hashable and compare equal); others pass through."""
    if isinstance(value, list):
        return tuple(value)
    return value


def plain_dict(value: Any) -> Any:
    """Mappings become plain dicts (JSON-friendly, not shared with the caller); others pass
    through."""
    if isinstance(value, Mapping):
        return dict(value)
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


def int_one_of(*choices: int, explanation: str = "") -> Validator:
    """An int among ``choices`` (booleans refused); ``explanation`` follows the error message.

    Example: ``int_one_of(8, 16, explanation="DeepLab keeps ...")`` says
    ``encoder_output_stride must be 8 or 16, got 32. DeepLab keeps ...``.
    """
    names = [str(choice) for choice in choices]
    allowed = " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"
    tail = f" {explanation}" if explanation else ""

    def validate(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not _is_int(value) or value not in choices:
            raise InvalidOptionError(f"{attribute.name} must be {allowed}, got {value!r}.{tail}")

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


def check_norm_buildable(use_norm: NormOption, channels: int) -> None:
    """Build one small normalisation layer of ``channels`` channels, so that a ``use_norm``
    that cannot be built ("inplace" without ``inplace_abn``, a dict with keyword arguments the
    layer refuses) fails in ``ArchitectureOptions.check``, before the encoder is built or its
    weights downloaded."""
    try:
        make_norm(use_norm, channels)
    except TypeError as error:
        raise InvalidOptionError(
            f"decoder_use_norm={use_norm!r} cannot build a normalisation "
            f"layer: {error}. Pass only keyword arguments that layer accepts."
        ) from None


def check_channels_per_stage(channels: Sequence[int], encoder_depth: int,
                             defaults: Sequence[int], reason: str = "") -> None:
    """Refuse ``decoder_channels`` without one value per encoder stage, suggesting the first
    ``encoder_depth`` of ``defaults`` (and that depth which would fit); ``reason`` (e.g.
    ``" (one per decoder block)"``) follows the count in the message."""
    count = len(channels)
    if count != encoder_depth:
        suggestion = tuple(defaults[:encoder_depth])
        keep = f", or encoder_depth={count} to keep these channels" if 3 <= count <= 5 else ""
        raise InvalidOptionError(
            f"decoder_channels has {count} values but encoder_depth={encoder_depth} needs "
            f"{encoder_depth}{reason}: use {suggestion}{keep}"
        )


INTERPOLATION_MODES = ("nearest", "bilinear", "bicubic", "area", "nearest-exact")
interpolation_mode = one_of(*INTERPOLATION_MODES)


def error_message(error: BaseException) -> str:
    """The message of an error, without the internals attrs adds to its validator errors.

    attrs' own validators raise ``TypeError(message, attribute, expected, value)``, whose
    ``str()`` is the repr of that whole tuple; only the message is meant for people.
    """
    if len(error.args) > 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


class ArchitectureOptions:
    """Base of the attrs classes that validate an architecture's options.

    Subclasses are ``@attrs.frozen`` classes whose fields are the options, with validators
    (``segcore.options`` has the common ones). ``check`` does the cross-field checks that need
    the encoder depth.
    """

    @classmethod
    def names(cls) -> list[str]:
        return [field.name for field in attrs.fields(cls)]

    @classmethod
    def from_options(cls, architecture: str, **options: Any) -> ArchitectureOptions:
        """Validate keyword options, with errors that name the valid ones."""
        valid = cls.names()
        unknown = [name for name in options if name not in valid]
        if unknown:
            hint = "".join(did_you_mean(name, valid) for name in unknown)
            raise UnknownOptionError(
                f"unknown option(s) {', '.join(repr(n) for n in unknown)} for {architecture}."
                f"{hint} Valid options: {', '.join(valid)}."
            )
        try:
            return cls(**options)
        except InvalidOptionError:
            raise
        except (TypeError, ValueError) as error:
            raise InvalidOptionError(
                f"invalid option for {architecture}: {error_message(error)}"
            ) from error

    def check(self, encoder_depth: int) -> None:
        """Cross-field checks (e.g. one decoder channel count per encoder stage)."""

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)  # type: ignore[arg-type]


def refuse_decoder_typos(
    architecture: str, encoder_kwargs: Mapping[str, Any], valid: Sequence[str],
    prefixes: tuple[str, ...] = ("decoder_",),
) -> None:
    """Refuse ``decoder_*`` names among the keyword arguments a constructor passes to the encoder.

    A documented constructor sends its ``**kwargs`` to the encoder; an argument named
    ``decoder_...`` there is a misspelt decoder option, so it is refused with suggestions.

    Example::

        refuse_decoder_typos("unet", kwargs, ("decoder_use_batchnorm", *UnetOptions.names()))
    """
    wrong = [name for name in encoder_kwargs if name.startswith(prefixes)]
    if wrong:
        hint = "".join(did_you_mean(name, valid) for name in wrong)
        raise UnknownOptionError(
            f"unknown option(s) {', '.join(repr(n) for n in wrong)} for {architecture}.{hint} "
            f"Valid decoder options: {', '.join(valid)}."
        )


def batchnorm_option(value: Any, name: str = "decoder_use_batchnorm") -> Any:
    """Check a documented ``*_use_batchnorm`` argument and return it as a normalisation option.

    SMP's documented constructors take ``True`` (BatchNorm), ``False`` (none) or ``"inplace"``
    (InPlaceABN); SMP 0.6's ``decoder_use_norm`` values are accepted too.
    """
    if value is None:
        raise InvalidOptionError(f"{name} must be True, False or 'inplace', got None")
    try:
        norm_params(value)
    except InvalidOptionError as error:
        raise InvalidOptionError(
            f"{name} must be True, False or 'inplace' (decoder_use_norm takes the other "
            f"normalisations), got {value!r}: {error}"
        ) from None
    return value


def check_reserved_timm_options(options: Mapping[str, Any], reserved: Mapping[str, str],
                                owner: str) -> None:
    """``InvalidOptionError`` naming every key of ``options`` (meant for ``timm.create_model``)
    that is in ``reserved``, the arguments the ``owner`` encoder sets itself, with the advice
    ``reserved`` gives for each."""
    collisions = [key for key in options if key in reserved]
    if collisions:
        reasons = "; ".join(f"{key!r}: {reserved[key]}" for key in collisions)
        raise InvalidOptionError(
            f"option(s) {', '.join(repr(k) for k in collisions)} cannot be passed to timm: the "
            f"{owner} sets them itself ({reasons})."
        )
