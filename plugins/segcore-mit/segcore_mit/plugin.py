"""Hook implementations of segcore-mit: the specs of the Mix Transformer encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_mit.encoder:build_encoder"`` and imported only when one is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, smp_hub_weights

FACTORY = "segcore_mit.encoder:build_encoder"
FAMILY = "Mix Visual Transformer"

_SMALL_DIMS = (32, 64, 160, 256)
_DIMS = (64, 128, 320, 512)

# name: (stage widths, blocks per stage, params in millions as documented,
#        pinned revision of smp-hub/<name>.imagenet)
_ENCODERS: dict[str, tuple[tuple[int, ...], tuple[int, ...], float, str]] = {
    "mit_b0": (_SMALL_DIMS, (2, 2, 2, 2), 3, "9ce53d104d92d75aabb00aae70677aaab67e7c84"),
    "mit_b1": (_DIMS, (2, 2, 2, 2), 13, "a04bf4f13a549bce677cf79b04852e7510782817"),
    "mit_b2": (_DIMS, (3, 4, 6, 3), 24, "868ab6f13871dcf8c3d9f90ee4519403475b65ef"),
    "mit_b3": (_DIMS, (3, 4, 18, 3), 44, "32558d12a65f1daa0ebcf4f4053c4285e2c1cbda"),
    "mit_b4": (_DIMS, (3, 8, 27, 3), 60, "3a3454e900a4b4f11dd60eeb59101a9a1a36b017"),
    "mit_b5": (_DIMS, (3, 6, 40, 3), 81, "ced04d96c586b6297fd59a7a1e244fc78fdb6531"),
}


def _spec(name: str) -> EncoderSpec:
    embed_dims, layers, millions, revision = _ENCODERS[name]
    # the MiT weights take RGB in [0, 1] with ImageNet statistics (smp_hub_weights' default)
    source = smp_hub_weights(name, "imagenet", revision,
                             "ImageNet-1k (SegFormer authors' MiT weights)")
    return EncoderSpec(
        name=name,
        family=FAMILY,
        factory=FACTORY,
        params={"embed_dims": embed_dims, "layers": layers, "num_heads": (1, 2, 5, 8),
                "sr_ratios": (8, 4, 2, 1), "mlp_ratio": 4.0, "drop_path_rate": 0.1},
        out_channels=(3, 0, *embed_dims),
        weights={"imagenet": source},
        # The stages are attention blocks whose key/value reduction and depthwise
        # convolutions have no faithful dilated form: output_stride 32 only.
        supports_dilation=False,
        params_millions=millions,
        description=f"Mix Transformer {name[4:].upper()} (widths {'-'.join(map(str, embed_dims))},"
                    f" blocks {'-'.join(map(str, layers))}); no reduction-2 features",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 6 Mix Transformer encoders of the reference documentation."""
    return [_spec(name) for name in _ENCODERS]
