"""Hook implementations of segcore-timm-families: the specs of SMP's documented ``timm-`` names.

SMP 0.6.0 builds ``timm-resnest*``, ``timm-res2net*``, ``timm-res2next50``, ``timm-regnet[xy]_*``
and ``timm-gernet_*`` as ``tu-<same name>``, and ``timm-mobilenetv3_*`` as
``tu-tf_mobilenetv3_*`` (with a deprecation warning). segcore keeps the documented names as
first-class names: each spec below names its timm model and the timm pretrained tag that
``"imagenet"`` stands for (timm's default tag, which SMP 0.6.0 loads).

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``: everything here is static, so
listing the names imports neither the encoder module nor timm.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, Preprocessing, WeightSource

FACTORY = "segcore_timm_families.encoder:build_encoder"
HUB_ORGANISATION = "timm"  # timm's weights live in the Hugging Face repositories timm/<model>.<tag>

#: ImageNet statistics (every family but the TF-ported MobileNetV3s), RGB in [0, 1].
IMAGENET = Preprocessing(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: Inception statistics of the TF-ported MobileNetV3 weights (timm's pretrained config).
INCEPTION = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

_RESNET = (3, 64, 256, 512, 1024, 2048)
_RESNET_DEEP = (3, 128, 256, 512, 1024, 2048)
_GERNET = (3, 32, 128, 192, 640, 2560)

# name: (timm model, timm pretrained tag of "imagenet", out_channels, params in millions as
#        documented; the documentation truncates counts above 1M to whole millions)
_ENCODERS: dict[str, tuple[str, str, tuple[int, ...], float]] = {
    "timm-resnest14d": ("resnest14d", "gluon_in1k", _RESNET, 8),
    "timm-resnest26d": ("resnest26d", "gluon_in1k", _RESNET, 15),
    "timm-resnest50d": ("resnest50d", "in1k", _RESNET, 25),
    "timm-resnest101e": ("resnest101e", "in1k", _RESNET_DEEP, 46),
    "timm-resnest200e": ("resnest200e", "in1k", _RESNET_DEEP, 68),
    "timm-resnest269e": ("resnest269e", "in1k", _RESNET_DEEP, 108),
    "timm-resnest50d_4s2x40d": ("resnest50d_4s2x40d", "in1k", _RESNET, 28),
    "timm-resnest50d_1s4x24d": ("resnest50d_1s4x24d", "in1k", _RESNET, 23),
    "timm-res2net50_26w_4s": ("res2net50_26w_4s", "in1k", _RESNET, 23),
    "timm-res2net101_26w_4s": ("res2net101_26w_4s", "in1k", _RESNET, 43),
    "timm-res2net50_26w_6s": ("res2net50_26w_6s", "in1k", _RESNET, 35),
    "timm-res2net50_26w_8s": ("res2net50_26w_8s", "in1k", _RESNET, 46),
    "timm-res2net50_48w_2s": ("res2net50_48w_2s", "in1k", _RESNET, 23),
    "timm-res2net50_14w_8s": ("res2net50_14w_8s", "in1k", _RESNET, 23),
    "timm-res2next50": ("res2next50", "in1k", _RESNET, 22),
    "timm-regnetx_002": ("regnetx_002", "pycls_in1k", (3, 32, 24, 56, 152, 368), 2),
    "timm-regnetx_004": ("regnetx_004", "pycls_in1k", (3, 32, 32, 64, 160, 384), 4),
    "timm-regnetx_006": ("regnetx_006", "pycls_in1k", (3, 32, 48, 96, 240, 528), 5),
    "timm-regnetx_008": ("regnetx_008", "tv2_in1k", (3, 32, 64, 128, 288, 672), 6),
    "timm-regnetx_016": ("regnetx_016", "tv2_in1k", (3, 32, 72, 168, 408, 912), 8),
    "timm-regnetx_032": ("regnetx_032", "tv2_in1k", (3, 32, 96, 192, 432, 1008), 14),
    "timm-regnetx_040": ("regnetx_040", "pycls_in1k", (3, 32, 80, 240, 560, 1360), 20),
    "timm-regnetx_064": ("regnetx_064", "pycls_in1k", (3, 32, 168, 392, 784, 1624), 24),
    "timm-regnetx_080": ("regnetx_080", "tv2_in1k", (3, 32, 80, 240, 720, 1920), 37),
    "timm-regnetx_120": ("regnetx_120", "pycls_in1k", (3, 32, 224, 448, 896, 2240), 43),
    "timm-regnetx_160": ("regnetx_160", "tv2_in1k", (3, 32, 256, 512, 896, 2048), 52),
    "timm-regnetx_320": ("regnetx_320", "tv2_in1k", (3, 32, 336, 672, 1344, 2520), 105),
    "timm-regnety_002": ("regnety_002", "pycls_in1k", (3, 32, 24, 56, 152, 368), 2),
    "timm-regnety_004": ("regnety_004", "tv2_in1k", (3, 32, 48, 104, 208, 440), 3),
    "timm-regnety_006": ("regnety_006", "pycls_in1k", (3, 32, 48, 112, 256, 608), 5),
    "timm-regnety_008": ("regnety_008", "pycls_in1k", (3, 32, 64, 128, 320, 768), 5),
    "timm-regnety_016": ("regnety_016", "tv2_in1k", (3, 32, 48, 120, 336, 888), 10),
    "timm-regnety_032": ("regnety_032", "ra_in1k", (3, 32, 72, 216, 576, 1512), 17),
    "timm-regnety_040": ("regnety_040", "ra3_in1k", (3, 32, 128, 192, 512, 1088), 19),
    "timm-regnety_064": ("regnety_064", "ra3_in1k", (3, 32, 144, 288, 576, 1296), 29),
    "timm-regnety_080": ("regnety_080", "ra3_in1k", (3, 32, 168, 448, 896, 2016), 37),
    "timm-regnety_120": ("regnety_120", "sw_in12k_ft_in1k", (3, 32, 224, 448, 896, 2240), 49),
    "timm-regnety_160": ("regnety_160", "sw_in12k_ft_in1k", (3, 32, 224, 448, 1232, 3024), 80),
    "timm-regnety_320": ("regnety_320", "tv2_in1k", (3, 32, 232, 696, 1392, 3712), 141),
    "timm-gernet_s": ("gernet_s", "idstcv_in1k", (3, 13, 48, 48, 384, 1920), 6),
    "timm-gernet_m": ("gernet_m", "idstcv_in1k", _GERNET, 18),
    "timm-gernet_l": ("gernet_l", "idstcv_in1k", _GERNET, 28),
    "timm-mobilenetv3_large_075": (
        "tf_mobilenetv3_large_075", "in1k", (3, 16, 24, 32, 88, 720), 1.78),
    "timm-mobilenetv3_large_100": (
        "tf_mobilenetv3_large_100", "in1k", (3, 16, 24, 40, 112, 960), 2.97),
    "timm-mobilenetv3_large_minimal_100": (
        "tf_mobilenetv3_large_minimal_100", "in1k", (3, 16, 24, 40, 112, 960), 1.41),
    "timm-mobilenetv3_small_075": (
        "tf_mobilenetv3_small_075", "in1k", (3, 16, 16, 24, 40, 432), 0.57),
    "timm-mobilenetv3_small_100": (
        "tf_mobilenetv3_small_100", "in1k", (3, 16, 16, 24, 48, 576), 0.93),
    "timm-mobilenetv3_small_minimal_100": (
        "tf_mobilenetv3_small_minimal_100", "in1k", (3, 16, 16, 24, 48, 576), 0.43),
}

#: Name prefix -> family, as the documentation groups them.
_FAMILIES = (
    ("timm-resnest", "ResNeSt"),
    ("timm-res2ne", "Res2Ne(X)t"),
    ("timm-regnet", "RegNet(x/y)"),
    ("timm-gernet", "GERNet"),
    ("timm-mobilenetv3", "MobileNet"),
)


def family_of(name: str) -> str:
    """The documented family of a ``timm-`` name (``"timm-regnetx_002"`` -> ``"RegNet(x/y)"``)."""
    return next(family for prefix, family in _FAMILIES if name.startswith(prefix))


def hub_repository(timm_model: str, timm_tag: str) -> str:
    """The Hugging Face repository of timm's ``<model>.<tag>`` (``timm/resnest14d.gluon_in1k``)."""
    return f"{HUB_ORGANISATION}/{timm_model}.{timm_tag}"


def _spec(name: str) -> EncoderSpec:
    timm_model, timm_tag, out_channels, millions = _ENCODERS[name]
    preprocessing = INCEPTION if timm_model.startswith("tf_") else IMAGENET
    repository = hub_repository(timm_model, timm_tag)
    imagenet = WeightSource(
        delegate=True,
        preprocessing=preprocessing,
        description=(
            f"timm's {timm_model}.{timm_tag} (Hugging Face hub {repository}, revision main), "
            f"loaded by timm from the Hugging Face cache"
        ),
    )
    return EncoderSpec(
        name=name,
        family=family_of(name),
        factory=FACTORY,
        params={"timm_model": timm_model, "timm_tag": timm_tag},
        out_channels=out_channels,
        weights={"imagenet": imagenet},
        supports_dilation=True,  # timm builds all of them with output_stride 16 and 8
        supports_compile=True,
        accepts_kwargs=True,  # extra options go to timm.create_model, as in SMP 0.6.0
        native_setup=True,  # timm builds in_chans and output_stride in
        params_millions=millions,
        description=f"timm model {timm_model!r} (SMP 0.6.0: 'tu-{timm_model}')",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 48 ``timm-`` encoders of the reference documentation served by timm's own models."""
    return [_spec(name) for name in _ENCODERS]
