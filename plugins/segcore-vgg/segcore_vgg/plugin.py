"""Hook implementations of segcore-vgg: the specs of the VGG encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_vgg.encoder:build_encoder"`` and imported only when one is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, smp_hub_weights

FACTORY = "segcore_vgg.encoder:build_encoder"

#: Channels of the 6 feature maps at depth 5: the input, then reductions 2 to 32.
OUT_CHANNELS = (3, 128, 256, 512, 512, 512)

_LAYERS = {"A": 11, "B": 13, "D": 16, "E": 19}

# name: (torchvision configuration, batch norm, params in millions as documented,
#        pinned revision of smp-hub/<name>.imagenet)
_ENCODERS: dict[str, tuple[str, bool, float, str]] = {
    "vgg11": ("A", False, 9, "ad8b90e1051c38fdbf399cf5016886a1be357390"),
    "vgg11_bn": ("A", True, 9, "59757f9215032c9f092977092d57d26a9df7fd9c"),
    "vgg13": ("B", False, 9, "1b70ff2580f101a8007a48b51e2b5d1e5925dc42"),
    "vgg13_bn": ("B", True, 9, "9be454515193af6612261b7614fe90607e27b143"),
    "vgg16": ("D", False, 14, "49d74b799006ee252b86e25acd6f1fd8ac9a99c1"),
    "vgg16_bn": ("D", True, 14, "2c186d02fb519e93219a99a1c2af6295aef0bf0d"),
    "vgg19": ("E", False, 20, "2853d00d7bca364dbb98be4d6afa347e5aeec1f6"),
    "vgg19_bn": ("E", True, 20, "f09a924cb0d201ea6f61601df9559141382271d7"),
}


def _spec(name: str) -> EncoderSpec:
    config, batch_norm, millions, revision = _ENCODERS[name]
    layers = _LAYERS[config]
    return EncoderSpec(
        name=name,
        family="VGG",
        factory=FACTORY,
        params={"config": config, "batch_norm": batch_norm},
        out_channels=OUT_CHANNELS,
        # torchvision's weights: RGB in [0, 1] with ImageNet statistics
        weights={"imagenet": smp_hub_weights(name, "imagenet", revision,
                                             "ImageNet-1k (torchvision)")},
        supports_dilation=False,  # reductions are max-pools (SMP refuses dilation too)
        deepest_feature_pooled=True,  # the deepest feature is the 5th max-pool's output
        params_millions=millions,
        description=f"VGG-{layers} (configuration {config}"
                    + (", batch norm)" if batch_norm else ")"),
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 8 VGG encoders of the reference documentation."""
    return [_spec(name) for name in _ENCODERS]
