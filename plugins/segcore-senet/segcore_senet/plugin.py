"""Hook implementations of segcore-senet: the specs of the SE-Net encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_senet.encoder:build_encoder"`` and imported only when one is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, WeightSource, smp_hub_weights

FACTORY = "segcore_senet.encoder:build_encoder"

_TAG_DESCRIPTIONS = {
    "imagenet": "ImageNet-1k (Cadene's pretrainedmodels, converted by SMP)",
}

_SENET154_CHANNELS = (3, 128, 256, 512, 1024, 2048)
_SE_RESNET_CHANNELS = (3, 64, 256, 512, 1024, 2048)

# name: (block, blocks per stage, groups of the 3x3 convolutions, params in millions as
#        documented, {tag: pinned revision of smp-hub/<name>.<tag>} as SMP 0.6.0 pins them)
_ENCODERS: dict[str, tuple[str, tuple[int, ...], int, float, dict[str, str]]] = {
    "senet154": ("senet", (3, 8, 36, 3), 64, 113, {
        "imagenet": "249f45efc9881ba560a0c480128edbc34ab87e40",
    }),
    "se_resnet50": ("se_resnet", (3, 4, 6, 3), 1, 26, {
        "imagenet": "e6b4bc2dc85226c3d3474544410724a485455459",
    }),
    "se_resnet101": ("se_resnet", (3, 4, 23, 3), 1, 47, {
        "imagenet": "71fe95cc0a27f444cf83671f354de02dc741b18b",
    }),
    "se_resnet152": ("se_resnet", (3, 8, 36, 3), 1, 64, {
        "imagenet": "e79fc3d9d76f197bd76a2593c2054edf1083fe32",
    }),
    "se_resnext50_32x4d": ("se_resnext", (3, 4, 6, 3), 32, 25, {
        "imagenet": "73246406d879a2b0e3fdfe6fddd56347d38f38ae",
    }),
    "se_resnext101_32x4d": ("se_resnext", (3, 4, 23, 3), 32, 46, {
        "imagenet": "18808a4276f46421d358a9de554e0b93c2795df4",
    }),
}

_BLOCK_DESCRIPTIONS = {
    "senet": "SENet-154: 3x3 deep stem, 64-group SE bottlenecks",
    "se_resnet": "SE-ResNet: ResNet bottlenecks (stride on the 1x1) with squeeze-and-excitation",
    "se_resnext": "SE-ResNeXt: 32x4d grouped bottlenecks with squeeze-and-excitation",
}


def _weight_source(name: str, tag: str, revision: str) -> WeightSource:
    # Cadene's pretrainedmodels weights, as SMP's hub copies: RGB in [0, 1], ImageNet statistics
    return smp_hub_weights(name, tag, revision, _TAG_DESCRIPTIONS[tag])


def _spec(name: str) -> EncoderSpec:
    block, layers, groups, millions, revisions = _ENCODERS[name]
    return EncoderSpec(
        name=name,
        family="SE-Net",
        factory=FACTORY,
        params={"block": block, "layers": layers, "groups": groups},
        out_channels=_SENET154_CHANNELS if block == "senet" else _SE_RESNET_CHANNELS,
        weights={tag: _weight_source(name, tag, rev) for tag, rev in revisions.items()},
        supports_dilation=True,
        params_millions=millions,
        description=f"{_BLOCK_DESCRIPTIONS[block]} ({'-'.join(map(str, layers))} blocks)",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 6 SE-Net encoders of the reference documentation."""
    return [_spec(name) for name in _ENCODERS]
