"""Hook implementations of segcore-mobileone: the specs of the MobileOne encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_mobileone.encoder:build_encoder"`` and imported only when one is
built.

The names ``mobileone_s0`` ... ``mobileone_s4`` are newer than the reference documentation
(they are not in ``segcore/encoders.tsv``). Their reference is SMP 0.6.0
(``encoders/mobileone.py``): architecture, out_channels, hub repositories and revisions, and
the parameter counts below, which are those of SMP's encoder as it builds it (train-time
branches, no classifier). ``mobileone_s0`` counts more than ``s1`` at training time: its stage
blocks have 4 conv branches, which fuse away (``reparameterize``).
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, smp_hub_weights

FACTORY = "segcore_mobileone.encoder:build_encoder"

# name: (factory parameters, channels at depth 5 (input first), params in millions of SMP
#        0.6.0's train-time encoder, pinned revision of smp-hub/<name>.imagenet)
_ENCODERS: dict[str, tuple[dict[str, object], tuple[int, ...], float, str]] = {
    "mobileone_s0": (
        {"width_multipliers": (0.75, 1.0, 1.0, 2.0), "num_conv_branches": 4},
        (3, 48, 48, 128, 256, 1024), 4.27, "f52815cf0ad29278a9860c9cd5fabf19f904bedf",
    ),
    "mobileone_s1": (
        {"width_multipliers": (1.5, 1.5, 2.0, 2.5)},
        (3, 64, 96, 192, 512, 1280), 3.54, "5707a98852b762cd8e0c43b5c8c729cd28496677",
    ),
    "mobileone_s2": (
        {"width_multipliers": (1.5, 2.0, 2.5, 4.0)},
        (3, 64, 96, 256, 640, 2048), 5.84, "ddc3db8fa40d271902c7a8c95cee6691f617d551",
    ),
    "mobileone_s3": (
        {"width_multipliers": (2.0, 2.5, 3.0, 4.0)},
        (3, 64, 128, 320, 768, 2048), 8.12, "da89b84a91b7400c366c358bfbf8dd0b2fa4dde2",
    ),
    "mobileone_s4": (
        {"width_multipliers": (3.0, 3.5, 3.5, 4.0), "use_se": True},
        (3, 64, 192, 448, 896, 2048), 12.90, "16197c55d599076b6aae67a83d3b3f70c31b097c",
    ),
}


def _spec(name: str) -> EncoderSpec:
    params, out_channels, millions, revision = _ENCODERS[name]
    # SMP 0.6.0 reads the preprocessing from the hub's config.json; the values are ImageNet's
    # (RGB in [0, 1]), as SMP's earlier releases listed them for Apple's MobileOne weights.
    source = smp_hub_weights(name, "imagenet", revision,
                             "ImageNet-1k (Apple's unfused MobileOne weights)")
    return EncoderSpec(
        name=name,
        family="MobileOne",
        factory=FACTORY,
        params=params,
        out_channels=out_channels,
        weights={"imagenet": source},
        supports_dilation=True,  # SMP dilates stage3 and stage4 (get_stages)
        params_millions=millions,
        description=f"MobileOne-{name[-2:].upper()} (re-parameterisable; fuse for inference "
                    "with segcore_mobileone.reparameterize_model)",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 5 MobileOne encoders of SMP 0.6.0."""
    return [_spec(name) for name in _ENCODERS]
