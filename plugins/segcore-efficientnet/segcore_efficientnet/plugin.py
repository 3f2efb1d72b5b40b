"""Hook implementations of segcore-efficientnet: the specs of the EfficientNet-B0..B7 encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_efficientnet.encoder:build_encoder"`` and imported only when one is
built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import (
    HALF_PREPROCESSING,
    IMAGENET_PREPROCESSING,
    EncoderSpec,
    WeightSource,
    smp_hub_weights,
)

FACTORY = "segcore_efficientnet.encoder:build_encoder"

#: How each tag's weights expect their input (RGB in [0, 1]; AdvProp normalises to [-1, 1]).
PREPROCESSING = {
    "imagenet": IMAGENET_PREPROCESSING,
    "advprop": HALF_PREPROCESSING,
}

_TAG_DESCRIPTIONS = {
    "imagenet": "ImageNet-1k (efficientnet-pytorch port of the TensorFlow weights)",
    "advprop": "ImageNet-1k with adversarial examples (AdvProp); inputs normalised to [-1, 1]",
}

# name: (width, depth multiplier, nominal resolution, indices of the blocks giving the 1/4,
#        1/8, 1/16, 1/32 features, out_channels, params in millions as documented,
#        {tag: pinned revision of smp-hub/<name>.<tag>})
_ENCODERS: dict[str, tuple[float, float, int, tuple[int, ...], tuple[int, ...], float,
                           dict[str, str]]] = {
    "efficientnet-b0": (1.0, 1.0, 224, (2, 4, 8, 15), (3, 32, 24, 40, 112, 320), 4, {
        "imagenet": "1bbe7ecc1d5ea1d2058de1a2db063b8701aff314",
        "advprop": "29043c08140d9c6ee7de1468d55923f2b06bcec2",
    }),
    "efficientnet-b1": (1.0, 1.1, 240, (4, 7, 15, 22), (3, 32, 24, 40, 112, 320), 6, {
        "imagenet": "5d637466a5215de300a8ccb13a39357df2df2bf4",
        "advprop": "2e518b8b0955bbab467f50525578dab6b6086afc",
    }),
    "efficientnet-b2": (1.1, 1.2, 260, (4, 7, 15, 22), (3, 32, 24, 48, 120, 352), 7, {
        "imagenet": "a96d4f0295ffbae18ebba173bf7f3c0c8f21990e",
        "advprop": "be788c20dfb0bbe83b4c439f9cfe0dd937c0783e",
    }),
    "efficientnet-b3": (1.2, 1.4, 300, (4, 7, 17, 25), (3, 40, 32, 48, 136, 384), 10, {
        "imagenet": "074c54a6c473e0d294690d49cedb6cf463e7127d",
        "advprop": "9ccc166d87bd9c08d6bed4477638c7f4bb3eec78",
    }),
    "efficientnet-b4": (1.4, 1.8, 380, (5, 9, 21, 31), (3, 48, 32, 56, 160, 448), 17, {
        "imagenet": "05cd5dde5dab658f00c463f9b9aa0ced76784f40",
        "advprop": "f04caa809ea4eb08ee9e7fd555f5514ebe2a9ef5",
    }),
    "efficientnet-b5": (1.6, 2.2, 456, (7, 12, 26, 38), (3, 48, 40, 64, 176, 512), 28, {
        "imagenet": "69f4d28460a4e421b7860bc26ee7d832e03e01ca",
        "advprop": "dabe78fc8ab7ce93ddc2bb156b01db227caede88",
    }),
    "efficientnet-b6": (1.8, 2.6, 528, (8, 14, 30, 44), (3, 56, 40, 72, 200, 576), 40, {
        "imagenet": "8570752016f7c62ae149cffa058550fe44e21c8b",
        "advprop": "c2dbb4d1359151165ec7b96cfe54a9cac2142a31",
    }),
    "efficientnet-b7": (2.0, 3.1, 600, (10, 17, 37, 54), (3, 64, 48, 80, 224, 640), 63, {
        "imagenet": "5a5dbe687d612ebc3dca248274fd1191111deda6",
        "advprop": "ce33edb4e80c0cde268f098ae2299e23f615577d",
    }),
}


def _weight_source(name: str, tag: str, revision: str) -> WeightSource:
    return smp_hub_weights(name, tag, revision, _TAG_DESCRIPTIONS[tag],
                           preprocessing=PREPROCESSING[tag])


def _spec(name: str) -> EncoderSpec:
    width, depth_multiplier, resolution, feature_blocks, channels, millions, revisions = (
        _ENCODERS[name]
    )
    return EncoderSpec(
        name=name,
        family="EfficientNet",
        factory=FACTORY,
        params={"width": width, "depth_multiplier": depth_multiplier,
                "image_size": resolution, "feature_blocks": feature_blocks},
        out_channels=channels,
        weights={tag: _weight_source(name, tag, rev) for tag, rev in revisions.items()},
        supports_dilation=True,
        params_millions=millions,
        description=f"EfficientNet-{name[-2:].upper()} (width x{width}, depth x{depth_multiplier}"
                    f", 'same' padding for {resolution}x{resolution})",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 8 EfficientNet encoders of the reference documentation (``efficientnet-b0..b7``)."""
    return [_spec(name) for name in _ENCODERS]
