"""How a timm model's features are laid out, and the ``EncoderSpec`` of a ``tu-`` name.

A timm feature extractor (``timm.create_model(name, features_only=True)``) reports the
reduction and channels of each feature level in ``feature_info``. The layout is probed once
per model, on the meta device (no memory, no computation), and cached.

Three reduction patterns are supported, as in SMP's ``TimmUniversalEncoder``:

* traditional (ResNet...): ``2, 4, 8, 16, 32``;
* transformer-style (ConvNeXt, Swin...): ``4, 8, 16, 32``; the reduction-2 level is missing
  and the encoder returns an empty 0-channel map in its place;
* VGG-style: ``1, 2, 4, 8, 16, 32``; the reduction-1 level is not used (the input takes its
  place as the first feature, as the segcore encoder contract says).

This module imports timm; the plugin imports it only when a ``tu-`` name is resolved.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import attrs
import timm
import timm.models
import torch
from torch import nn

from segcore.errors import EncoderCapabilityError, UnknownNameError, did_you_mean
from segcore.specs import EncoderSpec, Preprocessing, WeightSource
from segcore_timm import PREFIX

FACTORY = "segcore_timm.encoder:build_timm_encoder"
WEIGHTS_TAG = "imagenet"

STYLE_TRADITIONAL = "traditional"
STYLE_TRANSFORMER = "transformer"
STYLE_VGG = "vgg"

#: Models suggested when the requested one cannot be used as an encoder.
SUGGESTED_MODELS = ("tu-resnet34", "tu-convnext_tiny", "tu-efficientnet_b0")


def timm_model_name(name: str) -> str:
    """The timm model name of ``"tu-<timm name>"`` (the prefix is optional), validated.

    Raises ``UnknownNameError`` with close matches when timm has no such model, or when the
    pretrained tag after the dot (``"tu-resnet18.a1_in1k"``) does not exist.

    Example::

        timm_model_name("tu-resnet18")   # "resnet18"
    """
    timm_name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    architecture, _, tag = timm_name.partition(".")
    if not architecture or not timm.is_model(architecture):
        candidates = [PREFIX + model for model in timm.list_models()]
        raise UnknownNameError(
            f"unknown encoder {PREFIX + timm_name!r}: timm {timm.__version__} has no model "
            f"{architecture!r}.{did_you_mean(PREFIX + timm_name, candidates)} Any name of "
            f"timm.list_models() works after the 'tu-' prefix if the model supports "
            f"features_only."
        )
    if tag:
        tagged = timm.list_models(architecture, pretrained=True)
        if timm_name not in tagged:
            available = ", ".join(repr(PREFIX + n) for n in tagged) or "none"
            raise UnknownNameError(
                f"unknown encoder {PREFIX + timm_name!r}: timm model {architecture!r} has no "
                f"pretrained tag {tag!r}. Available: {available}."
            )
    return timm_name


@attrs.frozen
class FeatureLayout:
    """The feature levels of a timm model with ``features_only=True`` and default options.

    Attributes:
        timm_name: the timm model name.
        indices: timm's default ``out_indices`` (positions in the model's feature list).
        reductions: the reduction of each of those levels.
        channels: the channels of each of those levels.
        channels_last: the features come as ``NHWC`` and must be permuted.
        supports_dilation: timm builds the features with ``output_stride=16``.
        params_millions: parameters of the full feature extractor, in millions.
        error: why timm could not build the model with ``features_only=True`` (else ``None``).
    """

    timm_name: str
    indices: tuple[int, ...] = ()
    reductions: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    channels_last: bool = False
    supports_dilation: bool = False
    params_millions: float | None = None
    error: str | None = None

    @property
    def style(self) -> str | None:
        """``"traditional"``, ``"transformer"``, ``"vgg"``, or ``None`` for another pattern."""
        reductions = list(self.reductions)
        count = len(reductions)
        if not count:
            return None
        if reductions == [2 ** (i + 1) for i in range(count)]:
            return STYLE_TRADITIONAL
        if reductions == [2 ** (i + 2) for i in range(count)]:
            return STYLE_TRANSFORMER
        if count > 1 and reductions == [2**i for i in range(count)]:
            return STYLE_VGG
        return None

    @property
    def levels(self) -> tuple[tuple[int, int, int], ...]:
        """``(index, reduction, channels)`` of the levels the encoder uses (reduction 1 dropped)."""
        triples = tuple(zip(self.indices, self.reductions, self.channels))
        return triples[1:] if self.style == STYLE_VGG else triples

    @property
    def max_depth(self) -> int:
        """The deepest ``depth`` this model can give (at most 5)."""
        if self.style is None:
            return 0
        skipped = 1 if self.style == STYLE_TRANSFORMER else 0
        return min(5, len(self.levels) + skipped)

    def out_indices(self, depth: int) -> tuple[int, ...]:
        """timm's ``out_indices`` for reductions ``2 .. 2**depth`` (4.. if transformer-style)."""
        count = depth - 1 if self.style == STYLE_TRANSFORMER else depth
        return tuple(index for index, _, _ in self.levels[:count])

    def reductions_for(self, depth: int, output_stride: int = 32) -> tuple[int, ...]:
        """Reductions of the levels ``out_indices(depth)`` selects, capped at ``output_stride``."""
        count = depth - 1 if self.style == STYLE_TRANSFORMER else depth
        return tuple(min(reduction, output_stride) for _, reduction, _ in self.levels[:count])

    def out_channels(self, in_channels: int = 3, depth: int = 5) -> tuple[int, ...]:
        """Channels of the ``depth + 1`` encoder features, the input first."""
        count = depth - 1 if self.style == STYLE_TRANSFORMER else depth
        channels = tuple(c for _, _, c in self.levels[:count])
        if self.style == STYLE_TRANSFORMER:
            return (in_channels, 0, *channels)
        return (in_channels, *channels)

    def require(self, depth: int) -> None:
        """Raise ``EncoderCapabilityError`` unless this model can be an encoder of ``depth``."""
        name = PREFIX + self.timm_name
        suggestions = ", ".join(repr(s) for s in SUGGESTED_MODELS)
        if self.error is not None:
            raise EncoderCapabilityError(
                f"encoder {name!r}: timm cannot build model {self.timm_name!r} as a feature "
                f"extractor (features_only=True), so it cannot be a segmentation encoder "
                f"({self.error}). Choose a timm model that supports features_only, such as "
                f"{suggestions}."
            )
        if self.style is None:
            raise EncoderCapabilityError(
                f"encoder {name!r}: the features of timm model {self.timm_name!r} have "
                f"reductions {list(self.reductions)}; segcore needs 2, 4, 8, 16, 32 (or 4, 8, "
                f"16, 32 for transformer-style models, or 1, 2, 4, ... for VGG-style ones). "
                f"Plain vision transformers keep one resolution and are not supported; choose "
                f"a hierarchical model such as {suggestions}."
            )
        if depth > self.max_depth:
            raise EncoderCapabilityError(
                f"encoder {name!r} gives features down to reduction "
                f"{2 ** self.max_depth} only (timm reductions {list(self.reductions)}); use "
                f"encoder_depth <= {self.max_depth}, got {depth}."
            )


def _is_channels_last(model: nn.Module) -> bool:
    output_format = getattr(model, "output_fmt", None)
    return str(getattr(output_format, "value", output_format)) == "NHWC"


def _create_features(timm_name: str, device: str, **kwargs: Any) -> nn.Module:
    with torch.device(device):
        return timm.create_model(timm_name, features_only=True, **kwargs)


@functools.lru_cache(maxsize=256)
def probe_layout(timm_name: str) -> FeatureLayout:
    """Probe (once per model) the feature layout of a timm model, on the meta device.

    Models that cannot be created on the meta device are created on the CPU instead.

    Example::

        probe_layout("convnext_atto").reductions   # (4, 8, 16, 32)
    """
    device = "meta"
    try:
        model = _create_features(timm_name, device)
    except Exception:  # a few models cannot be created on the meta device: try for real
        device = "cpu"
        try:
            model = _create_features(timm_name, device)
        except Exception as error:
            return FeatureLayout(timm_name, error=f"{type(error).__name__}: {error}".rstrip(": "))
    info = model.feature_info
    layout = FeatureLayout(
        timm_name,
        indices=tuple(int(i) for i in info.out_indices),
        reductions=tuple(int(r) for r in info.reduction()),
        channels=tuple(int(c) for c in info.channels()),
        channels_last=_is_channels_last(model),
        params_millions=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
    )
    del model
    if layout.style is None:
        return layout
    return attrs.evolve(layout, supports_dilation=_dilates(layout, device))


def _dilates(layout: FeatureLayout, device: str) -> bool:
    """Whether timm builds the features with ``output_stride=16`` and caps the reductions."""
    try:
        model = _create_features(layout.timm_name, device, output_stride=16)
    except Exception:
        return False
    reductions = tuple(int(r) for r in model.feature_info.reduction())
    return reductions == tuple(min(r, 16) for r in layout.reductions)


def pretrained_weights(timm_name: str) -> dict[str, WeightSource]:
    """``{"imagenet": <timm's own weights>}`` when timm has pretrained weights, else ``{}``."""
    if not timm.models.is_model_pretrained(timm_name):
        return {}
    config = timm.models.get_pretrained_cfg(timm_name)
    if config is None or config.mean is None or config.std is None:
        return {}
    preprocessing = Preprocessing(
        mean=tuple(float(v) for v in config.mean),
        std=tuple(float(v) for v in config.std),
        input_space=getattr(config, "input_space", None) or "RGB",
        input_range=tuple(getattr(config, "input_range", None) or (0.0, 1.0)),
    )
    architecture = timm_name.partition(".")[0]
    origin = config.hf_hub_id or config.url or "timm"
    description = (
        f"timm's pretrained weights {architecture}.{config.tag} ({origin}); timm downloads and "
        f"caches them. Other tags: 'tu-{architecture}.<tag>'."
    )
    return {WEIGHTS_TAG: WeightSource(delegate=True, preprocessing=preprocessing,
                                      description=description)}


def encoder_spec(name: str) -> EncoderSpec:
    """The spec of ``"tu-<timm name>"`` (raises ``UnknownNameError`` for an unknown model).

    A model that cannot be an encoder (no ``features_only``, an unsupported reduction
    pattern) still gets a spec; building it raises ``EncoderCapabilityError`` saying why.
    """
    timm_name = timm_model_name(name)
    layout = probe_layout(timm_name)
    usable = layout.error is None and layout.max_depth >= 5
    weights: Mapping[str, WeightSource] = pretrained_weights(timm_name)
    return EncoderSpec(
        name=name,
        family="timm",
        factory=FACTORY,
        out_channels=layout.out_channels(3, 5) if usable else None,
        weights=weights,
        supports_dilation=layout.supports_dilation,
        supports_compile=True,
        accepts_kwargs=True,
        native_setup=True,
        params_millions=layout.params_millions,
        description=f"timm model {timm_name!r} as an encoder (features_only)",
    )
