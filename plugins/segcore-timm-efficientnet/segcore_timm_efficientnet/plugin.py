"""Hook implementations of segcore-timm-efficientnet: the specs of the timm EfficientNets.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module (and timm)
is referenced as ``"segcore_timm_efficientnet.encoder:build_encoder"`` and imported only when
an encoder is built.

The documented Lite names are ``timm-efficientnet-lite0`` .. ``4``; SMP 0.6.0 spells them
``timm-tf_efficientnet_lite0`` .. ``4``. Both spellings build the same encoder: the documented
one is the name (listed, naming cache files), SMP 0.6.0's is an alias of it.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import (
    HALF_PREPROCESSING,
    IMAGENET_PREPROCESSING,
    EncoderSpec,
    Preprocessing,
    WeightSource,
    smp_hub_weights,
)

FACTORY = "segcore_timm_efficientnet.encoder:build_encoder"
FAMILY = "EfficientNet"

# Preprocessing: ImageNet statistics for the "imagenet" (B0-B8) and "noisy-student" weights;
# inputs scaled to [-1, 1] (HALF_PREPROCESSING) for "advprop" and every Lite model.

_TAGS: dict[str, tuple[str, Preprocessing]] = {
    # tag: (description, preprocessing) for the B0-B8 and L2 models
    "imagenet": ("ImageNet-1k (TensorFlow EfficientNet weights, ported by timm)",
                 IMAGENET_PREPROCESSING),
    "advprop": ("ImageNet-1k with AdvProp (adversarial examples), inputs in [-1, 1]",
                HALF_PREPROCESSING),
    "noisy-student": ("Noisy Student: ImageNet-1k + unlabeled JFT-300M", IMAGENET_PREPROCESSING),
}
_LITE_TAG = ("ImageNet-1k (TensorFlow EfficientNet-Lite weights, ported by timm), inputs in "
             "[-1, 1]", HALF_PREPROCESSING)

# name: (channel multiplier, depth multiplier, documented params in millions, out_channels,
#        {tag: pinned revision of smp-hub/<name>.<tag>}), from SMP 0.6.0's timm_efficientnet.py
_MODELS: dict[str, tuple[float, float, float, tuple[int, ...], dict[str, str]]] = {
    "timm-efficientnet-b0": (1.0, 1.0, 4, (3, 32, 24, 40, 112, 320), {
        "imagenet": "8419e9cc19da0b68dcd7bb12f19b7c92407ad7c4",
        "advprop": "a5870af2d24ce79e0cc7fae2bbd8e0a21fcfa6d8",
        "noisy-student": "bea8b0ff726a50e48774d2d360c5fb1ac4815836",
    }),
    "timm-efficientnet-b1": (1.0, 1.1, 6, (3, 32, 24, 40, 112, 320), {
        "imagenet": "63bdd65ef6596ef24f1cadc7dd4f46b624442349",
        "advprop": "79b3d102080ef679b16c2748e608a871112233d0",
        "noisy-student": "36856124a699f6032574ceeefab02040daa90a9a",
    }),
    "timm-efficientnet-b2": (1.1, 1.2, 7, (3, 32, 24, 48, 120, 352), {
        "imagenet": "e693adb39d3cb3847e71e3700a0c2aa58072cff1",
        "advprop": "b58479bf78007cfbb365091d64eeee369bddfa21",
        "noisy-student": "67c558827c6d3e0975ff9b4bce8557bc2ca80931",
    }),
    "timm-efficientnet-b3": (1.2, 1.4, 10, (3, 40, 32, 48, 136, 384), {
        "imagenet": "1666b835b5151d6bb2067c7cd67e67ada6c39edf",
        "advprop": "70474cdb9f1ff4fcbd7434e66560ead1ab8e506b",
        "noisy-student": "2367bc9f61e79ee97684169a71a87db280bcf4db",
    }),
    "timm-efficientnet-b4": (1.4, 1.8, 17, (3, 48, 32, 56, 160, 448), {
        "imagenet": "07868c28ab308f4de4cf1e7ec54b33b8b002ccdb",
        "advprop": "8ea1772ee9a2a0d18c1b56dce0dfac8dd33d537d",
        "noisy-student": "faeb77b6e8292a700380c840d39442d7ce4d6443",
    }),
    "timm-efficientnet-b5": (1.6, 2.2, 28, (3, 48, 40, 64, 176, 512), {
        "imagenet": "004153b4ddd93d30afd9bbf34329d7f57396d413",
        "advprop": "1d1c5f05aab5ed9a1d5052847ddd4024c06a464d",
        "noisy-student": "9bc3a1e5490de92b1af061d5c2c474ab3129e38c",
    }),
    "timm-efficientnet-b6": (1.8, 2.6, 40, (3, 56, 40, 72, 200, 576), {
        "imagenet": "dbbf28a5c33f021486db4070de693caad6b56c3d",
        "advprop": "3b5d3412047f7711c56ffde997911cfefe79f835",
        "noisy-student": "9b899ea9e8e0ce2ccada0f34a8cb8b5028e9bb36",
    }),
    "timm-efficientnet-b7": (2.0, 3.1, 63, (3, 64, 48, 80, 224, 640), {
        "imagenet": "8ef7ffccf54dad9baceb21d05b7ef86b6b70f4cc",
        "advprop": "fcbc576ffb939c12d5cd8dad523fdae6eb0177ca",
        "noisy-student": "6b1dd73e61bf934d485d7bd4381dc3e2ab374664",
    }),
    "timm-efficientnet-b8": (2.2, 3.6, 84, (3, 72, 56, 88, 248, 704), {
        "imagenet": "b5e9dde35605a3a6d17ea2a727382625f9066a37",
        "advprop": "e43f381de72e7467383c2c80bacbb7fcb9572866",
    }),
    "timm-efficientnet-l2": (4.3, 5.3, 474, (3, 136, 104, 176, 480, 1376), {
        "noisy-student": "cdc711e76d1becdd9197169f1a8bb1b2094e980c",
    }),
}

# Lite index: (channel multiplier, depth multiplier, documented params in millions,
#              out_channels, pinned revision of smp-hub/timm-tf_efficientnet_lite<i>.imagenet)
_LITE_MODELS: dict[int, tuple[float, float, float, tuple[int, ...], str]] = {
    0: (1.0, 1.0, 4, (3, 32, 24, 40, 112, 320), "f5729249af07e5d923fb8b16922256ce2865d108"),
    1: (1.0, 1.1, 4, (3, 32, 24, 40, 112, 320), "7b5e3f8dbb0c13b74101773584bba7523721be72"),
    2: (1.1, 1.2, 6, (3, 32, 24, 48, 120, 352), "cc5f6cd4c7409ebacc13292f09d369ae88547f6a"),
    3: (1.2, 1.4, 8, (3, 32, 32, 48, 136, 384), "ab29c8402991591d66f813bbb1f061565d9b0cd0"),
    4: (1.4, 1.8, 13, (3, 32, 32, 56, 160, 448), "91a822e0f03c255b34dfb7846d3858397e50ba39"),
}

LITE_NAME = "timm-efficientnet-lite{}"
#: SMP 0.6.0's spelling of the Lite names (also the name of its hub repositories).
SMP_LITE_NAME = "timm-tf_efficientnet_lite{}"
#: SMP 0.6.0 spelling -> documented (canonical) name.
SMP_SPELLINGS: dict[str, str] = {SMP_LITE_NAME.format(i): LITE_NAME.format(i) for i in _LITE_MODELS}


def _source(name: str, repo: str, tag: str, revision: str, description: str,
            preprocessing: Preprocessing) -> WeightSource:
    return smp_hub_weights(name, tag, revision, description, preprocessing=preprocessing,
                           repository=f"{repo}.{tag}")


def _model_spec(name: str) -> EncoderSpec:
    channel_multiplier, depth_multiplier, millions, out_channels, revisions = _MODELS[name]
    return EncoderSpec(
        name=name,
        family=FAMILY,
        factory=FACTORY,
        params={"channel_multiplier": channel_multiplier, "depth_multiplier": depth_multiplier,
                "lite": False},
        out_channels=out_channels,
        weights={tag: _source(name, name, tag, revision, *_TAGS[tag])
                 for tag, revision in revisions.items()},
        supports_dilation=True,
        params_millions=millions,
        description=f"EfficientNet-{name.rsplit('-', 1)[1].upper()} on timm's blocks (width "
                    f"x{channel_multiplier}, depth x{depth_multiplier}, Swish, squeeze-excite)",
    )


def _lite_spec(index: int) -> EncoderSpec:
    channel_multiplier, depth_multiplier, millions, out_channels, revision = _LITE_MODELS[index]
    name = LITE_NAME.format(index)
    return EncoderSpec(
        name=name,
        family=FAMILY,
        factory=FACTORY,
        params={"channel_multiplier": channel_multiplier, "depth_multiplier": depth_multiplier,
                "lite": True},
        aliases=(SMP_LITE_NAME.format(index),),
        out_channels=out_channels,
        weights={"imagenet": _source(name, SMP_LITE_NAME.format(index), "imagenet", revision,
                                     *_LITE_TAG)},
        supports_dilation=True,
        params_millions=millions,
        description=f"EfficientNet-Lite{index} on timm's blocks (width x{channel_multiplier}, "
                    f"depth x{depth_multiplier}, ReLU6, no squeeze-excite); SMP 0.6.0 spells it "
                    f"{SMP_LITE_NAME.format(index)}",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 15 documented timm EfficientNet encoders (the Lite ones also under SMP 0.6.0's
    spelling, as aliases)."""
    return [*(_model_spec(name) for name in _MODELS),
            *(_lite_spec(index) for index in _LITE_MODELS)]
