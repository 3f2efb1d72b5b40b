"""The specs of segcore-mobileone: names, tags, sources, preprocessing, parameter counts.

The MobileOne names are newer than the reference documentation: the reference for their
parameter counts, channels and weight sources is SMP 0.6.0 (encoders/mobileone.py).
"""

from __future__ import annotations

import pytest

from segcore import testing

# SMP 0.6.0: parameters of the train-time encoder as SMP builds it (classifier removed),
# out_channels, and the pinned revision of smp-hub/<name>.imagenet.
SMP = {
    "mobileone_s0": (4_268_272, (3, 48, 48, 128, 256, 1024),
                     "f52815cf0ad29278a9860c9cd5fabf19f904bedf"),
    "mobileone_s1": (3_544_192, (3, 64, 96, 192, 512, 1280),
                     "5707a98852b762cd8e0c43b5c8c729cd28496677"),
    "mobileone_s2": (5_835_648, (3, 64, 96, 256, 640, 2048),
                     "ddc3db8fa40d271902c7a8c95cee6691f617d551"),
    "mobileone_s3": (8_121_600, (3, 64, 128, 320, 768, 2048),
                     "da89b84a91b7400c366c358bfbf8dd0b2fa4dde2"),
    "mobileone_s4": (12_902_248, (3, 64, 192, 448, 896, 2048),
                     "16197c55d599076b6aae67a83d3b3f70c31b097c"),
}


def test_names_are_not_in_the_documentation_but_known_to_the_core() -> None:
    from segcore._catalog import documented_encoders, encoder_package

    assert not any(name.startswith("mobileone") for name in documented_encoders())
    assert {encoder_package(name) for name in SMP} == {"segcore-mobileone"}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    testing.check_lazy_encoder_listing("segcore_mobileone", SMP, pattern="mobileone*",
                                       exact=True, forbidden=("timm",))


@pytest.mark.parametrize("name", sorted(SMP))
def test_spec_matches_smp(name: str) -> None:
    count, channels, revision = SMP[name]
    testing.check_encoder_spec(name, tags=("imagenet",), family="MobileOne",
                               out_channels=channels, supports_dilation=True,
                               params_millions=pytest.approx(count / 1e6, abs=0.005))
    testing.check_smp_hub_weights(name, testing.IMAGENET_PREPROCESSING,
                                  revisions={"imagenet": revision})


@pytest.mark.parametrize("name", sorted(SMP))
def test_parameter_count_and_channels_match_smp(name: str) -> None:
    testing.check_parameter_count(name, count=SMP[name][0])
