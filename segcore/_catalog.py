"""The documented names (architectures, encoders, losses, metrics) and who provides each.

Used only for messages: which first-party package to ``pip install`` for a documented name
that no installed plugin provides, or that no segcore package provides yet. The encoder names
are read from ``encoders.tsv`` beside this file (the reference documentation's list, one name
a line with its family, weight tags and size), when a message needs them.
"""

from __future__ import annotations

import functools
from pathlib import Path

#: The first-party plugin packages that exist (a test compares this with plugins/).
FIRST_PARTY_PACKAGES: frozenset[str] = frozenset({
    "segcore-deeplab",
    "segcore-densenet",
    "segcore-dpn",
    "segcore-dpt",
    "segcore-efficientnet",
    "segcore-fpn",
    "segcore-inception",
    "segcore-linknet",
    "segcore-losses",
    "segcore-manet",
    "segcore-metrics",
    "segcore-mit",
    "segcore-mobilenet",
    "segcore-mobileone",
    "segcore-pan",
    "segcore-pspnet",
    "segcore-resnet",
    "segcore-segformer",
    "segcore-senet",
    "segcore-skresnet",
    "segcore-timm",
    "segcore-timm-efficientnet",
    "segcore-timm-families",
    "segcore-train",
    "segcore-unet",
    "segcore-unetplusplus",
    "segcore-upernet",
    "segcore-vgg",
})

ARCHITECTURE_PACKAGES: dict[str, str] = {
    "unet": "segcore-unet",
    "unetplusplus": "segcore-unetplusplus",
    "manet": "segcore-manet",
    "linknet": "segcore-linknet",
    "fpn": "segcore-fpn",
    "pspnet": "segcore-pspnet",
    "pan": "segcore-pan",
    "deeplabv3": "segcore-deeplab",
    "deeplabv3plus": "segcore-deeplab",
    "upernet": "segcore-upernet",
    "segformer": "segcore-segformer",
    "dpt": "segcore-dpt",
}

#: The documented architecture classes with their registry names, in SMP 0.6.0's order
#: (``segcore.smp`` serves them in this order).
ARCHITECTURE_CLASSES: dict[str, str] = {
    "Unet": "unet",
    "UnetPlusPlus": "unetplusplus",
    "MAnet": "manet",
    "Linknet": "linknet",
    "FPN": "fpn",
    "PSPNet": "pspnet",
    "DeepLabV3": "deeplabv3",
    "DeepLabV3Plus": "deeplabv3plus",
    "PAN": "pan",
    "UPerNet": "upernet",
    "Segformer": "segformer",
    "DPT": "dpt",
}

LOSSES: tuple[str, ...] = (
    "jaccard", "dice", "tversky", "focal", "lovasz", "soft_bce", "soft_ce", "mcc",
)

METRICS: tuple[str, ...] = (
    "fbeta_score", "f1_score", "iou_score", "accuracy", "precision", "recall", "sensitivity",
    "specificity", "balanced_accuracy", "positive_predictive_value", "negative_predictive_value",
    "false_negative_rate", "false_positive_rate", "false_discovery_rate", "false_omission_rate",
    "positive_likelihood_ratio", "negative_likelihood_ratio",
)

#: Encoder names newer than the reference documentation, with their package.
EXTRA_ENCODERS: dict[str, str] = {
    f"mobileone_s{index}": "segcore-mobileone" for index in range(5)
}

#: Name prefix -> package, checked in order (the first match wins); see the encoder issues.
_ENCODER_PREFIXES: tuple[tuple[str, str], ...] = (
    ("timm-efficientnet-", "segcore-timm-efficientnet"),
    ("timm-skresne", "segcore-skresnet"),
    ("timm-", "segcore-timm-families"),
    ("resne", "segcore-resnet"),
    ("vgg", "segcore-vgg"),
    ("densenet", "segcore-densenet"),
    ("se", "segcore-senet"),
    ("dpn", "segcore-dpn"),
    ("inception", "segcore-inception"),
    ("xception", "segcore-inception"),
    ("efficientnet-", "segcore-efficientnet"),
    ("mobilenet_v2", "segcore-mobilenet"),
    ("mit_", "segcore-mit"),
)

OPEN_ENCODER_PREFIXES: dict[str, str] = {"tu-": "segcore-timm"}

CATALOG_FILE = Path(__file__).with_name("encoders.tsv")


@functools.cache
def documented_encoders() -> dict[str, tuple[str, tuple[str, ...], float]]:
    """``{name: (family, weight tags, params in millions)}`` from ``encoders.tsv``."""
    table: dict[str, tuple[str, tuple[str, ...], float]] = {}
    for line in CATALOG_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, family, tags, millions = line.split("\t")
        table[name] = (family, tuple(t for t in tags.split(",") if t), float(millions))
    return table


def encoder_package(name: str) -> str | None:
    """The package meant to provide a documented encoder name (``None`` if not documented)."""
    if name in EXTRA_ENCODERS:
        return EXTRA_ENCODERS[name]
    if name not in documented_encoders():
        return None
    for prefix, package in _ENCODER_PREFIXES:
        if name.startswith(prefix):
            return package
    return None


def package_for(kind: str, name: str) -> str | None:
    """The first-party package meant to provide ``name`` of ``kind``, or ``None``."""
    if kind == "architectures":
        return ARCHITECTURE_PACKAGES.get(name.lower())
    if kind == "encoders":
        package = encoder_package(name)
        if package is not None:
            return package
        for prefix, open_package in OPEN_ENCODER_PREFIXES.items():
            if name.startswith(prefix):
                return open_package
    if kind == "losses" and name in LOSSES:
        return "segcore-losses"
    if kind == "metrics" and name in METRICS:
        return "segcore-metrics"
    return None


def is_published(package: str) -> bool:
    """Whether the package exists (is part of this release) rather than planned."""
    return package in FIRST_PARTY_PACKAGES


def is_first_party(distribution: str) -> bool:
    """Whether a distribution is one of segcore's own (released or planned) packages.

    First-party plugins load before third-party ones, so a third-party plugin that repeats
    one of their names is the one reported as the duplicate.
    """
    planned = {*ARCHITECTURE_PACKAGES.values(), *(p for _, p in _ENCODER_PREFIXES),
               *EXTRA_ENCODERS.values(), *OPEN_ENCODER_PREFIXES.values(), "segcore-losses",
               "segcore-metrics"}
    return distribution in FIRST_PARTY_PACKAGES or distribution in planned
