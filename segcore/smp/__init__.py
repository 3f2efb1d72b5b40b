"""``segcore.smp``: the public API of segmentation_models_pytorch 0.6.0 ("SMP"), served by segcore.

``import segcore.smp as smp`` runs SMP-based scripts unchanged::

    import segcore.smp as smp

    model = smp.Unet("resnet34", encoder_weights="imagenet", classes=3)
    model = smp.create_model("FPN", encoder_name="resnet34", classes=3)
    loss = smp.losses.DiceLoss(smp.losses.MULTICLASS_MODE)
    tp, fp, fn, tn = smp.metrics.get_stats(logits.argmax(1), mask, "multiclass", num_classes=3)
    smp.metrics.iou_score(tp, fp, fn, tn, reduction="micro")
    model.save_pretrained("runs/best", metrics={"iou": 0.8}, dataset="fields")
    model = smp.from_pretrained("runs/best")

Every name maps to the segcore object that provides it (``smp.Unet`` is ``segcore.Unet``), looked
up lazily in the installed plugins: importing this module imports no architecture, loss, metric
or timm. Where SMP 0.6.0 computes something segcore deliberately fixes, the fixed behaviour is
kept; docs/smp.md lists every difference. A name whose plugin is not installed raises
``segcore.MissingDependencyError`` (an ``ImportError``) naming the package to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import segcore
from segcore import _catalog
from segcore.errors import MissingDependencyError, UnknownNameError, UnknownOptionError

if TYPE_CHECKING:
    import os

    from torch import nn

#: The SMP API version this module serves (SMP scripts compare ``smp.__version__``).
__version__ = "0.6.0"
#: The version of segcore behind it.
__segcore_version__ = segcore.__version__

#: SMP 0.6.0's architecture classes, in its order, with segcore's architecture names.
ARCHITECTURE_CLASSES: dict[str, str] = _catalog.ARCHITECTURE_CLASSES

_SUBMODULES = ("encoders", "losses", "metrics")

#: SMP names that segcore.smp does not serve, with what to use instead.
NOT_SERVED: dict[str, str] = {
    "datasets": (
        "SMP's example dataset (smp.datasets.OxfordPetDataset, which downloads the data) is "
        "not part of segcore; use your own torch Dataset"
    ),
    "decoders": (
        "SMP's decoders package is not served: the decoders live in the architecture plugins "
        "(segcore-unet, segcore-fpn, ...; e.g. segcore_unet.decoder); build models with "
        "smp.Unet(...), smp.create_model(...) or segcore.build(...)"
    ),
    "base": (
        "SMP's base package is not served: every model derives from segcore.SegmentationModel "
        "(segcore.model), and the shared layers are in segcore.nn and segcore.heads"
    ),
}

__all__ = [
    "MODEL_ARCHITECTURES_MAPPING",
    *ARCHITECTURE_CLASSES,
    "CompatibilityWarning",
    "__version__",
    "create_model",
    "encoders",
    "from_pretrained",
    "losses",
    "metrics",
]


class CompatibilityWarning(UserWarning):
    """segcore.smp accepted an SMP call but does something SMP 0.6.0 did silently (ignores an
    argument); the message says what and how to silence it."""


def missing(name: str, error: Exception, module: str = __name__) -> MissingDependencyError:
    """The error for an SMP name whose providing plugin is not installed (or not loaded).

    An ``ImportError``, so that ``from segcore.smp.losses import DiceLoss`` shows the message
    (an ``AttributeError`` would be replaced by Python's "cannot import name").
    """
    return MissingDependencyError(f"{module}.{name} is not available: {error}")


def _architecture_class(name: str) -> type:
    """The segcore class of SMP class ``name`` (``"Unet"``), from the installed plugins."""
    try:
        return segcore.get_architecture_class(ARCHITECTURE_CLASSES[name])
    except UnknownNameError as error:
        raise missing(name, error) from None


class ArchitectureMapping(Mapping[str, type]):
    """``MODEL_ARCHITECTURES_MAPPING``: lowercase architecture name -> model class.

    SMP's is a dict of its 12 classes; this one is read-only and lists the architectures
    installed now (SMP's 12 with every plugin; third-party architectures too), loading a class
    when it is looked up. A documented name whose plugin is missing raises ``KeyError``
    (``segcore.UnknownNameError``) naming the package to install.
    """

    def _names(self) -> list[str]:
        installed = segcore.list_architectures()
        ordered = [name for name in ARCHITECTURE_CLASSES.values() if name in installed]
        return ordered + [name for name in installed if name not in ordered]

    def __getitem__(self, name: str) -> type:
        if not isinstance(name, str):
            raise KeyError(name)
        return segcore.get_architecture_class(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._names()

    def __repr__(self) -> str:
        return f"MODEL_ARCHITECTURES_MAPPING({self._names()})"


MODEL_ARCHITECTURES_MAPPING = ArchitectureMapping()


def create_model(
    arch: str,
    encoder_name: str = "resnet34",
    encoder_weights: str | None = "imagenet",
    in_channels: int = 3,
    classes: int = 1,
    **kwargs: Any,
) -> nn.Module:
    """Build any architecture by name, with SMP's defaults (``encoder_weights="imagenet"``).

    ``arch`` is case-insensitive (``"FPN"``, ``"deeplabv3plus"``); ``**kwargs`` go to the class.
    An unknown name raises ``segcore.UnknownNameError`` (a ``KeyError``, as SMP) with close
    matches, or the package to install.

    Example::

        model = smp.create_model("FPN", encoder_name="resnet18", encoder_weights=None, classes=3)
    """
    if not isinstance(arch, str):
        raise UnknownNameError(f"arch must be an architecture name such as 'unet', got {arch!r}")
    model_class = segcore.get_architecture_class(arch.lower())
    return model_class(
        encoder_name=encoder_name,
        encoder_weights=encoder_weights,
        in_channels=in_channels,
        classes=classes,
        **kwargs,
    )


#: Options of SMP's ``from_pretrained`` that go to huggingface_hub's downloader; segcore's
#: ``from_pretrained`` downloads through its own hub support and takes only ``revision`` and
#: ``token``.
_HUB_OPTIONS = ("force_download", "proxies", "resume_download", "local_files_only",
                "cache_dir")


def from_pretrained(
    pretrained_model_name_or_path: str | os.PathLike[str],
    *args: Any,
    strict: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """Load a model saved with ``save_pretrained`` (segcore's or SMP's folder, or a Hub id).

    Forwards to ``segcore.from_pretrained``: ``revision`` and ``token`` are for Hub ids, other
    keyword arguments override the saved constructor arguments (``classes=5`` with
    ``strict=False`` to fine-tune). The model comes back in eval mode, as with SMP.

    Example::

        model = smp.from_pretrained("runs/best")
    """
    if args:
        raise TypeError(
            f"from_pretrained takes one positional argument (the folder or Hub id), got "
            f"{len(args) + 1}; pass the other arguments by keyword"
        )
    hub_options = [key for key in kwargs if key in _HUB_OPTIONS]
    if hub_options:
        raise UnknownOptionError(
            f"from_pretrained: {', '.join(map(repr, hub_options))} (huggingface_hub download "
            f"options of SMP's from_pretrained) are not supported by segcore.smp; it takes "
            f"revision=, token=, strict= and constructor arguments to override. Download the "
            f"folder first (huggingface_hub.snapshot_download) and pass its path."
        )
    return segcore.from_pretrained(pretrained_model_name_or_path, strict=strict, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ARCHITECTURE_CLASSES:
        return _architecture_class(name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in NOT_SERVED:
        raise AttributeError(f"segcore.smp has no {name!r}: {NOT_SERVED[name]} (docs/smp.md)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, "ARCHITECTURE_CLASSES", "ArchitectureMapping", "NOT_SERVED",
                   "__segcore_version__", "missing"})

