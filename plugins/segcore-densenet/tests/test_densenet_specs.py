"""The specs of segcore-densenet: names, tags, sources, parameter counts, capabilities, listing."""

from __future__ import annotations

import pytest

from segcore import testing

# From the reference documentation ("Available Encoders", DenseNet): tags and params (millions).
DOCUMENTED = {
    "densenet121": (("imagenet",), 6),
    "densenet169": (("imagenet",), 12),
    "densenet201": (("imagenet",), 18),
    "densenet161": (("imagenet",), 26),
}
# SMP 0.6.0's out_channels.
OUT_CHANNELS = {
    "densenet121": (3, 64, 256, 512, 1024, 1024),
    "densenet169": (3, 64, 256, 512, 1280, 1664),
    "densenet201": (3, 64, 256, 512, 1792, 1920),
    "densenet161": (3, 96, 384, 768, 2112, 2208),
}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    testing.check_lazy_encoder_listing("segcore_densenet", DOCUMENTED, pattern="densenet*",
                                       forbidden=("torchvision", "timm"))


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    testing.check_encoder_spec(name, tags=tags, family="DenseNet", params_millions=millions,
                               out_channels=OUT_CHANNELS[name], supports_dilation=False,
                               deepest_feature_pooled=False)
    testing.check_smp_hub_weights(name, testing.IMAGENET_PREPROCESSING)


def test_revisions_are_pinned_per_name() -> None:
    assert len(testing.check_revisions_are_distinct(DOCUMENTED)) == len(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_match_the_documentation(name: str) -> None:
    # The documentation truncates to whole millions (densenet121: 6.95M is listed as "6M").
    testing.check_parameter_count(name, documented_millions=DOCUMENTED[name][1])


# The refusal of output_stride 8 and 16 (no dilation) is checked by testing.check_encoder for
# every name (test_*_conformance.py).
