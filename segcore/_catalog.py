"""Documented names and the first-party package that provides each.

Used only to tell a user which package to ``pip install`` for a name that no installed
plugin provides. Generated from the reference catalogue (encoders.tsv).
"""

from __future__ import annotations

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

ARCHITECTURE_CLASSES: dict[str, str] = {
    "Unet": "unet",
    "UnetPlusPlus": "unetplusplus",
    "MAnet": "manet",
    "Linknet": "linknet",
    "FPN": "fpn",
    "PSPNet": "pspnet",
    "PAN": "pan",
    "DeepLabV3": "deeplabv3",
    "DeepLabV3Plus": "deeplabv3plus",
    "UPerNet": "upernet",
    "Segformer": "segformer",
    "DPT": "dpt",
}

_ENCODERS_BY_PACKAGE: dict[str, tuple[str, ...]] = {
    "segcore-resnet": (
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnext50_32x4d",
        "resnext101_32x4d",
        "resnext101_32x8d",
        "resnext101_32x16d",
        "resnext101_32x32d",
        "resnext101_32x48d",
    ),
    "segcore-resnest": (
        "timm-resnest14d",
        "timm-resnest26d",
        "timm-resnest50d",
        "timm-resnest101e",
        "timm-resnest200e",
        "timm-resnest269e",
        "timm-resnest50d_4s2x40d",
        "timm-resnest50d_1s4x24d",
    ),
    "segcore-res2net": (
        "timm-res2net50_26w_4s",
        "timm-res2net101_26w_4s",
        "timm-res2net50_26w_6s",
        "timm-res2net50_26w_8s",
        "timm-res2net50_48w_2s",
        "timm-res2net50_14w_8s",
        "timm-res2next50",
    ),
    "segcore-regnet": (
        "timm-regnetx_002",
        "timm-regnetx_004",
        "timm-regnetx_006",
        "timm-regnetx_008",
        "timm-regnetx_016",
        "timm-regnetx_032",
        "timm-regnetx_040",
        "timm-regnetx_064",
        "timm-regnetx_080",
        "timm-regnetx_120",
        "timm-regnetx_160",
        "timm-regnetx_320",
        "timm-regnety_002",
        "timm-regnety_004",
        "timm-regnety_006",
        "timm-regnety_008",
        "timm-regnety_016",
        "timm-regnety_032",
        "timm-regnety_040",
        "timm-regnety_064",
        "timm-regnety_080",
        "timm-regnety_120",
        "timm-regnety_160",
        "timm-regnety_320",
    ),
    "segcore-gernet": (
        "timm-gernet_s",
        "timm-gernet_m",
        "timm-gernet_l",
    ),
    "segcore-senet": (
        "senet154",
        "se_resnet50",
        "se_resnet101",
        "se_resnet152",
        "se_resnext50_32x4d",
        "se_resnext101_32x4d",
    ),
    "segcore-skresnet": (
        "timm-skresnet18",
        "timm-skresnet34",
        "timm-skresnext50_32x4d",
    ),
    "segcore-densenet": (
        "densenet121",
        "densenet169",
        "densenet201",
        "densenet161",
    ),
    "segcore-inception": (
        "inceptionresnetv2",
        "inceptionv4",
        "xception",
    ),
    "segcore-efficientnet": (
        "efficientnet-b0",
        "efficientnet-b1",
        "efficientnet-b2",
        "efficientnet-b3",
        "efficientnet-b4",
        "efficientnet-b5",
        "efficientnet-b6",
        "efficientnet-b7",
        "timm-efficientnet-b0",
        "timm-efficientnet-b1",
        "timm-efficientnet-b2",
        "timm-efficientnet-b3",
        "timm-efficientnet-b4",
        "timm-efficientnet-b5",
        "timm-efficientnet-b6",
        "timm-efficientnet-b7",
        "timm-efficientnet-b8",
        "timm-efficientnet-l2",
        "timm-efficientnet-lite0",
        "timm-efficientnet-lite1",
        "timm-efficientnet-lite2",
        "timm-efficientnet-lite3",
        "timm-efficientnet-lite4",
    ),
    "segcore-mobilenet": (
        "mobilenet_v2",
        "timm-mobilenetv3_large_075",
        "timm-mobilenetv3_large_100",
        "timm-mobilenetv3_large_minimal_100",
        "timm-mobilenetv3_small_075",
        "timm-mobilenetv3_small_100",
        "timm-mobilenetv3_small_minimal_100",
    ),
    "segcore-dpn": (
        "dpn68",
        "dpn68b",
        "dpn92",
        "dpn98",
        "dpn107",
        "dpn131",
    ),
    "segcore-vgg": (
        "vgg11",
        "vgg11_bn",
        "vgg13",
        "vgg13_bn",
        "vgg16",
        "vgg16_bn",
        "vgg19",
        "vgg19_bn",
    ),
    "segcore-mit": (
        "mit_b0",
        "mit_b1",
        "mit_b2",
        "mit_b3",
        "mit_b4",
        "mit_b5",
    ),
}

ENCODER_PACKAGES: dict[str, str] = {
    name: package for package, names in _ENCODERS_BY_PACKAGE.items() for name in names
}

OPEN_ENCODER_PREFIXES: dict[str, str] = {"tu-": "segcore-timm"}


def package_for(kind: str, name: str) -> str | None:
    """The first-party package that provides ``name``, or ``None``."""
    if kind == "architectures":
        return ARCHITECTURE_PACKAGES.get(name.lower())
    if kind == "encoders":
        if name in ENCODER_PACKAGES:
            return ENCODER_PACKAGES[name]
        for prefix, package in OPEN_ENCODER_PREFIXES.items():
            if name.startswith(prefix):
                return package
    if kind == "losses":
        return "segcore-losses"
    if kind == "metrics":
        return "segcore-metrics"
    return None
