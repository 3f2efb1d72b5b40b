"""Hook implementations of segcore-skresnet: the specs of the selective-kernel ResNe(X)ts.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module (and timm)
is referenced as ``"segcore_skresnet.encoder:build_encoder"`` and imported only when an
encoder is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, smp_hub_weights

FACTORY = "segcore_skresnet.encoder:build_encoder"
FAMILY = "SK-ResNe(X)t"

_BASIC_CHANNELS = (3, 64, 64, 128, 256, 512)
_BOTTLENECK_CHANNELS = (3, 64, 256, 512, 1024, 2048)

# name: (factory params, documented params in millions, out_channels, pinned revision of
#        smp-hub/<name>.imagenet), from SMP 0.6.0's timm_sknet.py. SMP gives the basic-block
#        models selective kernels with attention width 1/8 on split inputs; the ResNeXt keeps
#        timm's SelectiveKernel defaults.
_MODELS: dict[str, tuple[dict[str, object], float, tuple[int, ...], str]] = {
    "timm-skresnet18": (
        {"block": "basic", "layers": (2, 2, 2, 2), "sk_rd_ratio": 1 / 8, "sk_split_input": True},
        11, _BASIC_CHANNELS, "6c97652bb744d89177b68274d2fda3923a7d1f95"),
    "timm-skresnet34": (
        {"block": "basic", "layers": (3, 4, 6, 3), "sk_rd_ratio": 1 / 8, "sk_split_input": True},
        21, _BASIC_CHANNELS, "2367796924a8182cc835ef6b5dc303917f923f99"),
    "timm-skresnext50_32x4d": (
        {"block": "bottleneck", "layers": (3, 4, 6, 3), "cardinality": 32, "base_width": 4},
        25, _BOTTLENECK_CHANNELS, "50207e407cc4c6ea9e6872963db6844ca7b7b9de"),
}


def _spec(name: str) -> EncoderSpec:
    params, millions, out_channels, revision = _MODELS[name]
    layers = "-".join(str(n) for n in params["layers"])  # type: ignore[attr-defined]
    return EncoderSpec(
        name=name,
        family=FAMILY,
        factory=FACTORY,
        params=params,
        out_channels=out_channels,
        # timm's weights: RGB in [0, 1] with ImageNet statistics
        weights={"imagenet": smp_hub_weights(name, "imagenet", revision, "ImageNet-1k (timm)")},
        supports_dilation=True,
        params_millions=millions,
        description=f"selective-kernel ResNe(X)t on timm's blocks ({params['block']} blocks "
                    f"{layers})",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 3 selective-kernel encoders of the reference documentation."""
    return [_spec(name) for name in _MODELS]
