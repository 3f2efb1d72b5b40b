"""Hook implementations of segcore-inception: the specs of inceptionv4, inceptionresnetv2, xception.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; each encoder module is
referenced as a ``"module:callable"`` string and imported only when an encoder is built.

Facts from SMP 0.6.0: the weight files are SMP's hub repositories (``smp-hub/<name>.<tag>``,
``+`` spelled ``-`` in the repository name) pinned to the revisions below; all three networks
were trained on RGB input in [0, 1] normalised with mean 0.5 and std 0.5 per channel (Cadene's
``pretrainedmodels`` settings, which SMP's hub configurations carry). SMP refuses dilation for
the three (they downsample with pooling), so ``supports_dilation`` is ``False``.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import HALF_PREPROCESSING, EncoderSpec, WeightSource, smp_hub_weights

#: Inception-v4, Inception-ResNet-v2 and Xception weights: RGB in [0, 1], (x - 0.5) / 0.5.
INCEPTION_PREPROCESSING = HALF_PREPROCESSING

_TAG_DESCRIPTIONS = {
    "imagenet": "ImageNet-1k (TensorFlow weights ported by pretrainedmodels)",
    "imagenet+background": "ImageNet-1k, from the 1001-class (background first) classifier "
                           "(pretrainedmodels); the backbone is the one of 'imagenet'",
}

# name: (factory, out_channels at depth 5, params in millions as documented,
#        {tag: pinned revision of smp-hub/<name>.<tag with + spelled ->}, description)
_ENCODERS: dict[str, tuple[str, tuple[int, ...], float, dict[str, str], str]] = {
    "inceptionresnetv2": (
        "segcore_inception.inceptionresnetv2:build_inceptionresnetv2",
        (3, 64, 192, 320, 1088, 1536), 54, {
            "imagenet": "120c5afdbb80a1c989db0a7423ebb7a9db9b1e6c",
            "imagenet+background": "3ecf3491658dc0f6a76d69c9d1cb36511b1ee56c",
        },
        "Inception-ResNet-v2 (Szegedy et al. 2016), padded as in SMP",
    ),
    "inceptionv4": (
        "segcore_inception.inceptionv4:build_inceptionv4",
        (3, 64, 192, 384, 1024, 1536), 41, {
            "imagenet": "918fb54f07811d82a4ecde3a51156041d0facba9",
            "imagenet+background": "8c2a48e20d2709ee64f8421c61be309f05bfa536",
        },
        "Inception-v4 (Szegedy et al. 2016), padded as in SMP",
    ),
    "xception": (
        "segcore_inception.xception:build_xception",
        (3, 64, 128, 256, 728, 2048), 22, {
            "imagenet": "01cfaf27c11353b1f0c578e7e26d2c000ea91049",
        },
        "Xception (Chollet 2017), depthwise separable convolutions, padded as in SMP",
    ),
}


def _weight_source(name: str, tag: str, revision: str) -> WeightSource:
    return smp_hub_weights(name, tag, revision, _TAG_DESCRIPTIONS[tag],
                           preprocessing=INCEPTION_PREPROCESSING,
                           repository=f"{name}.{tag.replace('+', '-')}")


def _spec(name: str) -> EncoderSpec:
    factory, out_channels, millions, revisions, description = _ENCODERS[name]
    return EncoderSpec(
        name=name,
        family="Inception",
        factory=factory,
        out_channels=out_channels,
        weights={tag: _weight_source(name, tag, rev) for tag, rev in revisions.items()},
        supports_dilation=False,
        params_millions=millions,
        description=description,
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 3 encoders of the reference documentation's "Inception" section."""
    return [_spec(name) for name in _ENCODERS]
