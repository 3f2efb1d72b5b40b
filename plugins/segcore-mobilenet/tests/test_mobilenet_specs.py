"""The spec of segcore-mobilenet: name, tag, source, parameter count, capabilities, listing."""

from __future__ import annotations

from segcore import testing

NAME = "mobilenet_v2"
DOCUMENTED_TAGS, DOCUMENTED_MILLIONS = ("imagenet",), 2  # "mobilenet_v2  imagenet  2M"
OUT_CHANNELS = (3, 16, 24, 32, 96, 1280)  # SMP 0.6.0's
REVISION = "e67aa804e17f7b404b629127eabbd224c4e0690b"  # of smp-hub/mobilenet_v2.imagenet


def test_listing_shows_the_encoder_without_importing_the_implementation() -> None:
    testing.check_lazy_encoder_listing("segcore_mobilenet", [NAME], pattern="mobilenet*",
                                       forbidden=("torchvision", "timm"))


def test_plugin_provides_only_mobilenet_v2() -> None:
    from segcore_mobilenet.plugin import segcore_encoders

    assert [spec.name for spec in segcore_encoders()] == [NAME]


def test_spec_matches_the_documentation() -> None:
    testing.check_encoder_spec(NAME, tags=DOCUMENTED_TAGS, family="MobileNet",
                               params_millions=DOCUMENTED_MILLIONS, out_channels=OUT_CHANNELS,
                               supports_dilation=True, deepest_feature_pooled=False)
    testing.check_smp_hub_weights(NAME, testing.IMAGENET_PREPROCESSING,
                                  revisions={"imagenet": REVISION})


def test_parameter_count_and_channels_match_the_documentation() -> None:
    # The documentation truncates to whole millions (2.22M is listed as "2M").
    testing.check_parameter_count(NAME, documented_millions=DOCUMENTED_MILLIONS)
