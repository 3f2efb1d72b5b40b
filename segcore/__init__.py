"""segcore: image-segmentation networks from name strings, extensible through plugins.

Example::

    import segcore
    model = segcore.build("unet", encoder="resnet34", classes=3)
    model = segcore.Unet(encoder_name="resnet34", encoder_weights=None, in_channels=1, classes=3)
    segcore.list_encoders("res*")

Architecture classes (``segcore.Unet``, ``segcore.DeepLabV3Plus``...) are looked up lazily
in the installed plugins; importing segcore imports no architecture, encoder, or timm.
"""

from __future__ import annotations

from typing import Any as _Any

from segcore.errors import (
    BrokenPluginError,
    ChecksumError,
    DuplicateNameError,
    EncoderCapabilityError,
    InputShapeError,
    InvalidOptionError,
    InvalidTargetError,
    MissingDependencyError,
    PluginLoadError,
    SegcoreError,
    UnknownNameError,
    UnknownOptionError,
    UnknownWeightsError,
    WeightsError,
    WeightsFileError,
    WeightsNotFoundError,
)
from segcore.hookspecs import hookimpl

BINARY_MODE = "binary"
MULTICLASS_MODE = "multiclass"
MULTILABEL_MODE = "multilabel"
#: The three modes of losses and metrics (the single definition; plugins import it).
MODES = (BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE)

#: The package version (the single source: pyproject.toml reads it). Its major version is the
#: plugin contract's (``segcore.hookspecs.CONTRACT_VERSION``).
__version__ = "1.0.0"

__all__ = [
    "BINARY_MODE",
    "MODES",
    "MULTICLASS_MODE",
    "MULTILABEL_MODE",
    "BrokenPluginError",
    "ChecksumError",
    "DuplicateNameError",
    "EncoderCapabilityError",
    "InputShapeError",
    "InvalidOptionError",
    "InvalidTargetError",
    "MissingDependencyError",
    "PluginLoadError",
    "SegcoreError",
    "SegmentationModel",
    "UnknownNameError",
    "UnknownOptionError",
    "UnknownWeightsError",
    "WeightsError",
    "WeightsFileError",
    "WeightsNotFoundError",
    "build",
    "build_loss",
    "from_config",
    "from_pretrained",
    "get_architecture_class",
    "get_encoder",
    "get_metric",
    "get_preprocessing_fn",
    "get_preprocessing_params",
    "hookimpl",
    "list_architectures",
    "list_encoders",
    "list_heads",
    "list_losses",
    "list_metrics",
    "optimize_for_inference",
    "plugin_records",
]


def list_architectures(pattern: str | None = None) -> list[str]:
    """Names of the installed architectures, optionally filtered by an fnmatch pattern."""
    from segcore.registry import get_registry

    return get_registry().names("architectures", pattern)


def list_encoders(pattern: str | None = None) -> list[str]:
    """Names of the installed encoders (``"res*"`` filters). ``tu-<timm name>`` is open-ended."""
    from segcore.registry import get_registry

    return get_registry().names("encoders", pattern)


def list_heads(pattern: str | None = None) -> list[str]:
    """Names of the installed heads."""
    from segcore.registry import get_registry

    return get_registry().names("heads", pattern)


def plugin_records() -> list[_Any]:
    """Every discovered plugin with its status: loaded, failed (and why) or blocked."""
    from segcore.plugins import plugin_records as records

    return records()


_LAZY_FUNCTIONS = {
    "build": "segcore.factory:build",
    "get_encoder": "segcore.factory:get_encoder",
    "get_architecture_class": "segcore.factory:get_architecture_class",
    "get_preprocessing_fn": "segcore.preprocessing:get_preprocessing_fn",
    "get_preprocessing_params": "segcore.preprocessing:get_preprocessing_params",
    "from_config": "segcore.model:from_config",
    "from_pretrained": "segcore.model:from_pretrained",
    "SegmentationModel": "segcore.model:SegmentationModel",
    "build_loss": "segcore.objectives:build_loss",
    "get_metric": "segcore.objectives:get_metric",
    "list_losses": "segcore.objectives:list_losses",
    "list_metrics": "segcore.objectives:list_metrics",
    "optimize_for_inference": "segcore.inference:optimize_for_inference",
}


def __getattr__(name: str) -> _Any:
    from segcore.specs import load

    if name in _LAZY_FUNCTIONS:
        value = load(_LAZY_FUNCTIONS[name])
        globals()[name] = value
        return value
    if name[:1].isupper():
        from segcore.registry import get_registry

        registry = get_registry()
        for entry in registry.entries("architectures"):
            if entry.spec.class_name == name:
                return entry.load("model", "architectures")
        from segcore import _catalog

        if name in _catalog.ARCHITECTURE_CLASSES:
            raise AttributeError(
                str(registry.unknown("architectures", _catalog.ARCHITECTURE_CLASSES[name]))
            )
    raise AttributeError(f"module 'segcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(_LAZY_FUNCTIONS) | {"__version__"})
