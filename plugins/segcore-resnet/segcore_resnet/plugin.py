"""Hook implementations of segcore-resnet: the specs of the ResNet and ResNeXt encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_resnet.encoder:build_encoder"`` and imported only when one is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, WeightSource, smp_hub_weights

FACTORY = "segcore_resnet.encoder:build_encoder"

#: Our tag spelling -> SMP's (the documentation says "sswl", SMP's hub repositories "swsl").
SMP_TAG_SPELLING = {"sswl": "swsl"}

_TAG_DESCRIPTIONS = {
    "imagenet": "ImageNet-1k (torchvision)",
    "ssl": "semi-supervised on YFCC100M, fine-tuned on ImageNet-1k",
    "sswl": "semi-weakly supervised on Instagram, fine-tuned on ImageNet-1k",
    "instagram": "weakly supervised on Instagram, fine-tuned on ImageNet-1k (WSL)",
}

_BASIC_CHANNELS = (3, 64, 64, 128, 256, 512)
_BOTTLENECK_CHANNELS = (3, 64, 256, 512, 1024, 2048)

# name: (block, blocks per stage, groups, width per group, params in millions as documented,
#        {tag: pinned revision of smp-hub/<name>.<smp tag>})
_ENCODERS: dict[str, tuple[str, tuple[int, ...], int, int, float, dict[str, str]]] = {
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64, 11, {
        "imagenet": "3f2325ff978283d47aa6a1d6878ca20565622683",
        "ssl": "d600d5116aac2e6e595f99f40612074c723c00b2",
        "sswl": "0e3a35d4d8e344088c14a96eee502a88ac70eae1",
    }),
    "resnet34": ("basic", (3, 4, 6, 3), 1, 64, 21, {
        "imagenet": "7a57b34f723329ff020b3f8bc41771163c519d0c",
    }),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64, 23, {
        "imagenet": "00cb74e366966d59cd9a35af57e618af9f88efe9",
        "ssl": "d07daf5b4377f3700c6ac61906b0aafbc4eca46b",
        "sswl": "b9520cce124f91c6fe7eee45721a2c7954f0d8c0",
    }),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64, 42, {
        "imagenet": "cd7c15e8c51da86ae6a084515fdb962d0c94e7d1",
    }),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 1, 64, 58, {
        "imagenet": "951dd835e9d086628e447b484584c8983f9e1dd0",
    }),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), 32, 4, 22, {
        "imagenet": "329793c85d62fd340ae42ae39fb905a63df872e7",
        "ssl": "9b67cff77d060c7044493a58c24d1007c1eb06c3",
        "sswl": "52e6e49da61b8e26ca691e1aef2cbb952884057d",
    }),
    "resnext101_32x4d": ("bottleneck", (3, 4, 23, 3), 32, 4, 42, {
        "ssl": "b39796c8459084d13523b7016c3ef13a2e9e472b",
        "sswl": "3f8355b4892a31f001a832b49b2b01484d48516a",
    }),
    "resnext101_32x8d": ("bottleneck", (3, 4, 23, 3), 32, 8, 86, {
        "imagenet": "221af6198d03a4ee88992f78a1ee81b46a52d339",
        "instagram": "44cd927aa6e64673ffe9d31230bad44abc18b823",
        "ssl": "723a95ddeed335c9488c37c6cbef13d779ac8f97",
        "sswl": "58cf0bb65f91365470398080d9588b187d1777c4",
    }),
    "resnext101_32x16d": ("bottleneck", (3, 4, 23, 3), 32, 16, 191, {
        "instagram": "64e8e320eeae6501185b0627b2429a68e52d050c",
        "ssl": "1283fe03fbb6aa2599b2df24095255acb93c3d5c",
        "sswl": "30ba61bbd4d6af0d955c513dbb4f557b84eb094f",
    }),
    "resnext101_32x32d": ("bottleneck", (3, 4, 23, 3), 32, 32, 466, {
        "instagram": "c9405de121fdaa275a89de470fb19409e3eeaa86",
    }),
    "resnext101_32x48d": ("bottleneck", (3, 4, 23, 3), 32, 48, 826, {
        "instagram": "53e61a962b824ad7027409821f9ac3e3336dd024",
    }),
}


def _weight_source(name: str, tag: str, revision: str) -> WeightSource:
    smp_tag = SMP_TAG_SPELLING.get(tag, tag)
    # every ResNet/ResNeXt weight: RGB in [0, 1], ImageNet statistics
    return smp_hub_weights(name, tag, revision, _TAG_DESCRIPTIONS[tag],
                           repository=f"{name}.{smp_tag}")


def _spec(name: str) -> EncoderSpec:
    block, layers, groups, width_per_group, millions, revisions = _ENCODERS[name]
    family = "ResNeXt" if groups > 1 else "ResNet"
    return EncoderSpec(
        name=name,
        family=family,
        factory=FACTORY,
        params={"block": block, "layers": layers, "groups": groups,
                "width_per_group": width_per_group},
        out_channels=_BASIC_CHANNELS if block == "basic" else _BOTTLENECK_CHANNELS,
        weights={tag: _weight_source(name, tag, rev) for tag, rev in revisions.items()},
        weight_aliases={smp: ours for ours, smp in SMP_TAG_SPELLING.items() if ours in revisions},
        supports_dilation=True,
        params_millions=millions,
        description=f"{family} ({block} blocks {'-'.join(map(str, layers))}"
                    + (f", {groups}x{width_per_group}d" if groups > 1 else "") + ")",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 11 ResNet/ResNeXt encoders of the reference documentation."""
    return [_spec(name) for name in _ENCODERS]
