"""Hook implementations of segcore-dpn: the specs of the Dual Path Network encoders.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the encoder module is
referenced as ``"segcore_dpn.encoder:build_encoder"`` and imported only when one is built.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec, Preprocessing, WeightSource, smp_hub_weights

FACTORY = "segcore_dpn.encoder:build_encoder"

#: Our tag spelling -> the spelling in SMP's hub repository names.
HUB_TAG_SPELLING = {"imagenet+5k": "imagenet-5k"}

#: The DPN weights (converted from the MXNet originals) take RGB in [0, 1] normalised with
#: mean (124, 117, 104) / 255 and std 1 / (0.0167 * 255), as SMP and pretrainedmodels have it.
DPN_PREPROCESSING = Preprocessing(
    mean=(124 / 255, 117 / 255, 104 / 255), std=(1 / (0.0167 * 255),) * 3, input_space="RGB",
    input_range=(0.0, 1.0),
)

_TAG_DESCRIPTIONS = {
    "imagenet": "ImageNet-1k (MXNet originals by cypw, converted)",
    "imagenet+5k": "ImageNet-5k, fine-tuned on ImageNet-1k (MXNet originals, converted)",
}

# name: (factory parameters, channels at depth 5 (input first), params in millions as
#        documented, {tag: pinned revision of smp-hub/<name>.<hub tag>})
_ENCODERS: dict[str, tuple[dict[str, object], tuple[int, ...], float, dict[str, str]]] = {
    "dpn68": (
        {"small": True, "num_init_features": 10, "k_r": 128, "groups": 32,
         "k_sec": (3, 4, 12, 3), "inc_sec": (16, 32, 32, 64)},
        (3, 10, 144, 320, 704, 832), 11,
        {"imagenet": "c209aefdeae6bc93937556629e974b44d4e58535"},
    ),
    "dpn68b": (
        {"small": True, "num_init_features": 10, "k_r": 128, "groups": 32,
         "k_sec": (3, 4, 12, 3), "inc_sec": (16, 32, 32, 64), "b": True},
        (3, 10, 144, 320, 704, 832), 11,
        {"imagenet+5k": "6c6615e77688e390ae0eaa81e26821fbd83cee4b"},
    ),
    "dpn92": (
        {"num_init_features": 64, "k_r": 96, "groups": 32, "k_sec": (3, 4, 20, 3),
         "inc_sec": (16, 32, 24, 128)},
        (3, 64, 336, 704, 1552, 2688), 34,
        {"imagenet+5k": "d231f51ce4ad2c84ed5fcaf4ef0cfece6814a526"},
    ),
    "dpn98": (
        {"num_init_features": 96, "k_r": 160, "groups": 40, "k_sec": (3, 6, 20, 3),
         "inc_sec": (16, 32, 32, 128)},
        (3, 96, 336, 768, 1728, 2688), 58,
        {"imagenet": "b2836c86216c1ddce980d832f7deaa4ca22babd3"},
    ),
    "dpn107": (
        {"num_init_features": 128, "k_r": 200, "groups": 50, "k_sec": (4, 8, 20, 3),
         "inc_sec": (20, 64, 64, 128)},
        (3, 128, 376, 1152, 2432, 2688), 84,
        {"imagenet+5k": "dab4cd6b8b79de3db970f2dbff85359a8847db05"},
    ),
    "dpn131": (
        {"num_init_features": 128, "k_r": 160, "groups": 40, "k_sec": (4, 8, 28, 3),
         "inc_sec": (16, 32, 32, 128)},
        (3, 128, 352, 832, 1984, 2688), 76,
        {"imagenet": "04bbb9f415ca2bb59f3d8227857967b74698515e"},
    ),
}


def _weight_source(name: str, tag: str, revision: str) -> WeightSource:
    hub_tag = HUB_TAG_SPELLING.get(tag, tag)
    return smp_hub_weights(name, tag, revision, _TAG_DESCRIPTIONS[tag],
                           preprocessing=DPN_PREPROCESSING, repository=f"{name}.{hub_tag}")


def _spec(name: str) -> EncoderSpec:
    params, out_channels, millions, revisions = _ENCODERS[name]
    blocks = "-".join(map(str, params["k_sec"]))  # type: ignore[call-overload]
    return EncoderSpec(
        name=name,
        family="DPN",
        factory=FACTORY,
        params=params,
        out_channels=out_channels,
        weights={tag: _weight_source(name, tag, rev) for tag, rev in revisions.items()},
        supports_dilation=True,  # SMP dilates stages 4 and 5 (get_stages)
        params_millions=millions,
        description=f"Dual Path Network ({blocks} blocks, {params['groups']} groups"
                    + (", b variant" if params.get("b") else "") + ")",
    )


@hookimpl
def segcore_encoders() -> list[EncoderSpec]:
    """The 6 DPN encoders of the reference documentation."""
    return [_spec(name) for name in _ENCODERS]
