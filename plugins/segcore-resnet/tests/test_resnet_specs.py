"""The specs of segcore-resnet: names, tags, sources, parameter counts, lazy listing."""

from __future__ import annotations

import pytest

import segcore
from segcore import testing
from segcore.factory import get_encoder_spec
from segcore.weights import resolve_tag

# From the reference documentation ("Available Encoders"): weight tags and params (millions).
DOCUMENTED = {
    "resnet18": (("imagenet", "ssl", "sswl"), 11),
    "resnet34": (("imagenet",), 21),
    "resnet50": (("imagenet", "ssl", "sswl"), 23),
    "resnet101": (("imagenet",), 42),
    "resnet152": (("imagenet",), 58),
    "resnext50_32x4d": (("imagenet", "ssl", "sswl"), 22),
    "resnext101_32x4d": (("ssl", "sswl"), 42),
    "resnext101_32x8d": (("imagenet", "instagram", "ssl", "sswl"), 86),
    "resnext101_32x16d": (("instagram", "ssl", "sswl"), 191),
    "resnext101_32x32d": (("instagram",), 466),
    "resnext101_32x48d": (("instagram",), 826),
}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    testing.check_lazy_encoder_listing("segcore_resnet", DOCUMENTED, pattern="res*",
                                       forbidden=("torchvision",))


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    basic = name in ("resnet18", "resnet34")
    testing.check_encoder_spec(
        name, tags=tags, family="ResNeXt" if name.startswith("resnext") else "ResNet",
        params_millions=millions, supports_dilation=True,
        out_channels=(3, 64, 64, 128, 256, 512) if basic else (3, 64, 256, 512, 1024, 2048),
    )
    # SMP's hub spells the tag "sswl" as "swsl"
    testing.check_smp_hub_weights(name, testing.IMAGENET_PREPROCESSING,
                                  repositories={"sswl": f"{name}.swsl"})


def test_smp_spelling_swsl_is_an_alias_of_sswl() -> None:
    spec = get_encoder_spec("resnet50")
    tag, source = resolve_tag(spec, "swsl")
    assert tag == "sswl"
    assert "/smp-hub/resnet50.swsl/" in source.url
    params = segcore.get_preprocessing_params("resnet50", pretrained="swsl")
    assert params["mean"] == [0.485, 0.456, 0.406]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_matches_the_documentation(name: str) -> None:
    # on the meta device: no memory for the 826M-parameter model
    testing.check_parameter_count(name, documented_millions=DOCUMENTED[name][1])
