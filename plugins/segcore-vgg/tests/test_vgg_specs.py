"""The specs of segcore-vgg: names, tags, sources, parameter counts, capabilities, lazy listing."""

from __future__ import annotations

import pytest

from segcore import testing

# From the reference documentation ("Available Encoders", VGG): tags and params (millions).
DOCUMENTED = {
    "vgg11": (("imagenet",), 9),
    "vgg11_bn": (("imagenet",), 9),
    "vgg13": (("imagenet",), 9),
    "vgg13_bn": (("imagenet",), 9),
    "vgg16": (("imagenet",), 14),
    "vgg16_bn": (("imagenet",), 14),
    "vgg19": (("imagenet",), 20),
    "vgg19_bn": (("imagenet",), 20),
}
# SMP 0.6.0's out_channels are (64, 128, 256, 512, 512, 512): its first map is the 64-channel
# full-resolution ReLU output, which no decoder reads; segcore's contract puts the input there.
OUT_CHANNELS = (3, 128, 256, 512, 512, 512)


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    testing.check_lazy_encoder_listing("segcore_vgg", DOCUMENTED, pattern="vgg*",
                                       forbidden=("torchvision", "timm"))


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    spec = testing.check_encoder_spec(name, tags=tags, family="VGG", params_millions=millions,
                                      out_channels=OUT_CHANNELS, supports_dilation=False,
                                      deepest_feature_pooled=True)
    assert spec.params["batch_norm"] is name.endswith("_bn")
    testing.check_smp_hub_weights(name, testing.IMAGENET_PREPROCESSING)


def test_revisions_are_pinned_per_name() -> None:
    assert len(testing.check_revisions_are_distinct(DOCUMENTED)) == len(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_match_the_documentation(name: str) -> None:
    # The documentation truncates to whole millions (vgg16: 14.71M is listed as "14M").
    testing.check_parameter_count(name, documented_millions=DOCUMENTED[name][1])


# The refusal of output_stride 8 and 16 (no dilation) is checked by testing.check_encoder for
# every name (test_*_conformance.py).
