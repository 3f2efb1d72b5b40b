"""What a plugin provides, described as frozen attrs classes.

Specs reference implementation code lazily with ``"package.module:attribute"`` strings, so
listing what is installed imports no implementation module (and no timm). ``load(ref)``
imports the object when it is actually needed.

Example (a plugin's ``plugin.py``)::

    from segcore import hookimpl
    from segcore.specs import EncoderSpec, WeightSource

    @hookimpl
    def segcore_encoders():
        return [EncoderSpec(name="my_encoder", family="MyNet",
                            factory="segcore_mynet.encoder:build_encoder",
                            out_channels=(3, 32, 64, 128, 256, 512))]
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*$")


def _check_reference(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if callable(value):
        return
    if not isinstance(value, str) or not _REFERENCE.match(value):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be a 'package.module:attribute' "
            f"string or a callable, got {value!r}"
        )


def _check_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be a non-empty name of letters, "
            f"digits, '_', '-' and '.', got {value!r}"
        )


class FrozenDict(dict):  # type: ignore[type-arg]
    """A read-only dict: the mappings of specs. Unlike ``MappingProxyType`` it can be pickled
    and deep-copied, so models that keep their encoder's spec can be copied and saved whole.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("spec mappings are read-only; build a new spec with attrs.evolve")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        import copy

        return FrozenDict({key: copy.deepcopy(value, memo) for key, value in self.items()})

    def __hash__(self) -> int:  # frozen specs are hashable, so their mappings must be too
        return hash(tuple(sorted(self.items(), key=lambda item: str(item[0]))))


def _freeze_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return FrozenDict(value or {})


def load(reference: str | Any) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute (callables pass through)."""
    if not isinstance(reference, str):
        return reference
    module_name, _, attribute_path = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute_path.split("."):
        target = getattr(target, part)
    return target


def lazy_exports(
    module_name: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names load on first use.

    A plugin package is imported whenever its entry point is discovered, so its
    ``__init__`` must not import model code. Example (a plugin's ``__init__.py``)::

        from segcore.specs import lazy_exports

        __all__ = ["Unet", "UnetOptions"]
        __getattr__, __dir__ = lazy_exports(
            __name__, {"Unet": "segcore_unet.model", "UnetOptions": "segcore_unet.options"}
        )
    """
    module = sys.modules[module_name]

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(module, name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(exports))

    return __getattr__, __dir__


@attrs.frozen
class Preprocessing:
    """How input images must be prepared for a set of pretrained weights."""

    mean: tuple[float, ...] | None = attrs.field(
        default=(0.485, 0.456, 0.406), converter=attrs.converters.optional(tuple)
    )
    std: tuple[float, ...] | None = attrs.field(
        default=(0.229, 0.224, 0.225), converter=attrs.converters.optional(tuple)
    )
    input_space: str = "RGB"
    input_range: tuple[float, float] = attrs.field(default=(0.0, 1.0), converter=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_space": self.input_space,
            "input_range": list(self.input_range),
            "mean": list(self.mean) if self.mean is not None else None,
            "std": list(self.std) if self.std is not None else None,
        }


@attrs.frozen
class WeightSource:
    """Where the weights of one tag come from.

    Attributes:
        url: download address of the file (``http(s)://`` or ``file://``); ``None`` when the
            file can only be placed in the cache by hand.
        sha256: expected digest of the file. When ``None`` and the URL is a pinned Hugging Face
            revision, the digest the hub reports for that revision is used instead; without
            either, segcore refuses to download.
        filename: name of the file in the cache (defaults to the last part of the URL).
        preprocessing: how inputs must be normalised for these weights.
        delegate: the encoder's factory loads these weights itself (timm models do), the core
            only passes the tag on.
        description: one line shown by ``segcore info``.
    """

    url: str | None = attrs.field(default=None)
    sha256: str | None = attrs.field(default=None)
    filename: str | None = None
    preprocessing: Preprocessing = attrs.field(factory=Preprocessing)
    delegate: bool = False
    description: str = ""

    @url.validator
    def _check_url(self, attribute: attrs.Attribute, value: str | None) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not re.match(r"^(https?|file)://", value):
            raise ValueError(
                f"WeightSource.url must be an http://, https:// or file:// address, got "
                f"{value!r}. For a local file use its file:// URL "
                f"(pathlib.Path('/abs/path/weights.safetensors').as_uri())."
            )

    @sha256.validator
    def _check_sha256(self, attribute: attrs.Attribute, value: str | None) -> None:
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {value!r}")

    def cache_filename(self, encoder_name: str, tag: str) -> str:
        if self.filename:
            return self.filename
        if self.url:
            last = self.url.rstrip("/").rsplit("/", 1)[-1]
            if last and last not in ("model.safetensors", "pytorch_model.bin"):
                return last
            suffix = "." + last.rsplit(".", 1)[-1] if "." in last else ".safetensors"
            return f"{encoder_name}.{tag}{suffix}"
        return f"{encoder_name}.{tag}.safetensors"


#: ImageNet statistics on RGB inputs in [0, 1]: what most pretrained encoders expect.
IMAGENET_PREPROCESSING = Preprocessing()
#: Inputs scaled to [-1, 1] (mean and std 0.5): TF "inception"-style weights.
HALF_PREPROCESSING = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
#: Where SMP publishes its converted encoder weights: ``smp-hub/<repository>`` on the
#: Hugging Face Hub, one repository per encoder and tag.
SMP_HUB_URL = "https://huggingface.co/smp-hub/{repository}/resolve/{revision}/model.safetensors"


def smp_hub_weights(name: str, tag: str, revision: str, description: str, *,
                    preprocessing: Preprocessing = IMAGENET_PREPROCESSING,
                    repository: str | None = None) -> WeightSource:
    """The ``WeightSource`` of SMP's converted weights for encoder ``name`` and ``tag``.

    The file is ``model.safetensors`` of ``smp-hub/<repository>`` (default ``<name>.<tag>``;
    pass it where SMP spells the tag differently) at the pinned ``revision`` (a commit hash,
    whose sha256 the hub reports), cached as ``<name>.<tag>.safetensors``.

    Example::

        smp_hub_weights("resnet18", "imagenet", "3f2325ff...", "ImageNet-1k (torchvision)")
    """
    return WeightSource(
        url=SMP_HUB_URL.format(repository=repository or f"{name}.{tag}", revision=revision),
        filename=f"{name}.{tag}.safetensors",
        preprocessing=preprocessing,
        description=description,
    )


@attrs.frozen
class EncoderSpec:
    """One named encoder.

    Attributes:
        name: the documented name (``"resnet34"``, ``"tu-convnext_tiny"``).
        family: the family shown in listings (``"ResNet"``).
        aliases: other spellings of the name that build this encoder (SMP 0.6.0's
            ``"timm-tf_efficientnet_lite0"`` for ``"timm-efficientnet-lite0"``); not listed,
            and everything (cache files, saved configurations) uses ``name``.
        factory: ``"module:callable"`` building the encoder module. It is called as
            ``factory(name=..., depth=..., **params, **user_kwargs)`` (plus ``weights=TAG``
            for a delegated weight source) and returns an ``nn.Module`` that follows the
            encoder contract (``segcore.encoder``) for 3 input channels and output stride 32.
            The core then loads weights, adapts the input channels (``set_in_channels``) and
            dilates (``make_dilated``): a factory only constructs. With ``native_setup`` the
            factory also receives ``in_channels`` and ``output_stride`` and builds them in.
        params: fixed keyword arguments for the factory (block type, layer counts...).
        out_channels: channels of the ``depth + 1`` features at depth 5, the input first
            (6 values); ``check_encoder`` compares them with the module's.
        weights: pretrained weight tags and their sources (the first is the default tag).
        weight_aliases: other spellings of tags (``{"swsl": "sswl"}``); each must name a tag
            of ``weights``.
        supports_dilation: whether ``output_stride`` 8 and 16 work (``make_dilated`` for the
            core's set-up, the factory's own for ``native_setup``). Default ``False``.
        supports_compile: whether ``torch.compile(fullgraph=True)`` works.
        accepts_kwargs: whether the factory takes extra keyword arguments from the user
            (``Unet("tu-x", drop_path_rate=0.1)``) and from saved configurations.
        native_setup: the factory takes ``in_channels`` and ``output_stride`` itself (timm
            models are created with them); the core does not adapt or dilate afterwards.
        deepest_feature_pooled: the deepest feature comes straight from a pooling layer (VGG);
            decoders that want convolved features there (Unet) add a center block.
        params_millions: documented parameter count (information only).
        description: one line for ``segcore info``.
    """

    name: str = attrs.field(validator=_check_name)
    family: str
    factory: str = attrs.field(validator=_check_reference)
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze_mapping)
    aliases: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    out_channels: tuple[int, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )
    weights: Mapping[str, WeightSource] = attrs.field(factory=dict, converter=_freeze_mapping)
    weight_aliases: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    supports_dilation: bool = False
    supports_compile: bool = True
    accepts_kwargs: bool = False
    native_setup: bool = False
    deepest_feature_pooled: bool = False
    params_millions: float | None = None
    description: str = ""

    @out_channels.validator
    def _check_out_channels(self, attribute: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        if len(value) != 6 or not all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in value
        ):
            raise ValueError(
                f"EncoderSpec {self.name!r}: out_channels must be 6 non-negative ints (the "
                f"input, then reductions 2..32 at depth 5), got {value!r}"
            )

    @aliases.validator
    def _check_name_aliases(self, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
        for alias in value:
            _check_name(self, attribute, alias)
            if alias == self.name:
                raise ValueError(f"EncoderSpec {self.name!r}: an alias repeats the name")

    @weights.validator
    def _check_weights(self, attribute: attrs.Attribute, value: Mapping[str, Any]) -> None:
        for tag, source in value.items():
            if not isinstance(source, WeightSource):
                raise ValueError(
                    f"EncoderSpec {self.name!r}: weights[{tag!r}] must be a WeightSource, got "
                    f"{type(source).__name__}"
                )

    @weight_aliases.validator
    def _check_aliases(self, attribute: attrs.Attribute, value: Mapping[str, str]) -> None:
        dangling = {alias: tag for alias, tag in value.items() if tag not in self.weights}
        if dangling:
            raise ValueError(
                f"EncoderSpec {self.name!r}: weight_aliases {dangling} point at tags the encoder "
                f"does not have (its tags: {', '.join(self.weights) or 'none'})"
            )


@attrs.frozen
class ArchitectureSpec:
    """One architecture (encoder + decoder + heads).

    Only what must be known without importing the model: its name and where the class is.
    What the class knows itself is read from it: the class name (``segcore.Unet``) is the
    attribute part of ``model``; the options class is ``model.options_class``; the class's
    ``architecture`` attribute must equal ``name`` (``check_architecture`` verifies it).

    Attributes:
        name: the lowercase name used by ``segcore.build`` (``"unet"``).
        model: ``"module:Class"`` of the ``SegmentationModel`` subclass.
        description: one line for listings.
    """

    name: str = attrs.field(validator=_check_name)
    model: str = attrs.field(validator=_check_reference)
    description: str = ""

    @property
    def class_name(self) -> str:
        """The class's name, from the reference (``"pkg.model:Unet"`` -> ``"Unet"``)."""
        if isinstance(self.model, str):
            return self.model.rpartition(":")[2].rpartition(".")[2]
        return getattr(self.model, "__name__", str(self.model))


@attrs.frozen
class _DescribedFactorySpec:
    """The fields of a head, loss or metric spec: its name, factory reference and description."""

    name: str = attrs.field(validator=_check_name)
    factory: str = attrs.field(validator=_check_reference)
    description: str = ""


@attrs.frozen
class HeadSpec(_DescribedFactorySpec):
    """A head placed on top of the decoder or the encoder (``segmentation``, ``classification``)."""


@attrs.frozen
class LossSpec(_DescribedFactorySpec):
    """A loss: ``factory(**options)`` returns an ``nn.Module``."""


@attrs.frozen
class MetricSpec(_DescribedFactorySpec):
    """A metric function, e.g. ``iou_score(tp, fp, fn, tn, reduction=...)``."""


@attrs.frozen
class CommandSpec:
    """A ``segcore`` CLI subcommand.

    ``factory`` is called with an ``argparse.ArgumentParser`` to add its arguments and returns
    the handler, a callable taking the parsed ``argparse.Namespace`` and returning an exit code.
    """

    name: str = attrs.field(validator=_check_name)
    factory: str = attrs.field(validator=_check_reference)
    help: str = ""


#: The kinds of things plugins provide, with their spec class and the hooks that list them
#: (the deprecated ``segcore_decoders`` still fills ``architectures``).
KINDS: Mapping[str, tuple[type, tuple[str, ...]]] = MappingProxyType(
    {
        "encoders": (EncoderSpec, ("segcore_encoders",)),
        "architectures": (ArchitectureSpec, ("segcore_architectures", "segcore_decoders")),
        "heads": (HeadSpec, ("segcore_heads",)),
        "losses": (LossSpec, ("segcore_losses",)),
        "metrics": (MetricSpec, ("segcore_metrics",)),
        "commands": (CommandSpec, ("segcore_commands",)),
    }
)

#: The singular of each kind, for messages.
SINGULAR: Mapping[str, str] = MappingProxyType(
    {
        "encoders": "encoder",
        "architectures": "architecture",
        "heads": "head",
        "losses": "loss",
        "metrics": "metric",
        "commands": "command",
    }
)
