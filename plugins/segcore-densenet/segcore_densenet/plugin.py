"""Hook implementations of segcore-densenet: the specs of the DenseNet encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_densenet.encoder:build_encoder"`` and imported only when one is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, smp_hub_weights

FACTORY = "segcore_densenet.encoder:build_encoder"

# name: (stem channels, growth rate, layers per block, channels of the 6 feature maps,
#        params in millions as documented, pinned revision of smp-hub/<name>.imagenet)
_ENCODERS: dict[str, tuple[int, int, tuple[int, ...], tuple[int, ...], float, str]] = {
    "densenet121": (64, 32, (6, 12, 24, 16), (3, 64, 256, 512, 1024, 1024), 6,
                    "a17c96896a265b61338f66f61d3887b24f61995a"),
    "densenet169": (64, 32, (6, 12, 32, 32), (3, 64, 256, 512, 1280, 1664), 12,
                    "8facfba9fc72f7750879dac9ac6ceb3ab990de8d"),
    "densenet201": (64, 32, (6, 12, 48, 32), (3, 64, 256, 512, 1792, 1920), 18,
                    "ed5deb355d71659391d46fae5e7587460fbb5f84"),
    "densenet161": (96, 48, (6, 12, 36, 24), (3, 96, 384, 768, 2112, 2208), 26,
                    "9afe0fec51ab2a627141769d97d6f83756d78446"),
}


def _spec(name: str) -> EncoderSpec:
    stem, growth_rate, blocks, out_channels, millions, revision = _ENCODERS[name]
    return EncoderSpec(
        name=name,
        family="DenseNet",
        factory=FACTORY,
        params={"num_init_features": stem, "growth_rate": growth_rate, "block_config": blocks},
        out_channels=out_channels,
        # torchvision's weights: RGB in [0, 1] with ImageNet statistics
        weights={"imagenet": smp_hub_weights(name, "imagenet", revision,
                                             "ImageNet-1k (torchvision)")},
        supports_dilation=False,  # reductions are pools (SMP refuses dilation too)
        params_millions=millions,
        description=f"DenseNet-BC (growth {growth_rate}, blocks {'-'.join(map(str, blocks))})",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 4 DenseNet encoders of the reference documentation."""
    return [_spec(name) for name in _ENCODERS]
