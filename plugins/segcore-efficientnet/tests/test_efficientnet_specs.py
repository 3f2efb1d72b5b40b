"""The specs of segcore-efficientnet: names, tags, sources, sizes, out_channels, lazy listing."""

from __future__ import annotations

import pytest

from segcore import testing

# From the reference documentation ("Available Encoders"): weight tags and params (millions).
DOCUMENTED = {
    "efficientnet-b0": (("imagenet",), 4),
    "efficientnet-b1": (("imagenet",), 6),
    "efficientnet-b2": (("imagenet",), 7),
    "efficientnet-b3": (("imagenet",), 10),
    "efficientnet-b4": (("imagenet",), 17),
    "efficientnet-b5": (("imagenet",), 28),
    "efficientnet-b6": (("imagenet",), 40),
    "efficientnet-b7": (("imagenet",), 63),
}
# SMP 0.6.0 (encoders/efficientnet.py): out_channels, and its extra tag "advprop".
SMP_OUT_CHANNELS = {
    "efficientnet-b0": (3, 32, 24, 40, 112, 320),
    "efficientnet-b1": (3, 32, 24, 40, 112, 320),
    "efficientnet-b2": (3, 32, 24, 48, 120, 352),
    "efficientnet-b3": (3, 40, 32, 48, 136, 384),
    "efficientnet-b4": (3, 48, 32, 56, 160, 448),
    "efficientnet-b5": (3, 48, 40, 64, 176, 512),
    "efficientnet-b6": (3, 56, 40, 72, 200, 576),
    "efficientnet-b7": (3, 64, 48, 80, 224, 640),
}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    testing.check_lazy_encoder_listing("segcore_efficientnet", DOCUMENTED,
                                       pattern="efficientnet-*",
                                       forbidden=("timm", "efficientnet_pytorch"))


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_smp(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    # The documented tag first (the default), then SMP 0.6.0's extra "advprop".
    testing.check_encoder_spec(name, tags=(*tags, "advprop"), family="EfficientNet",
                               params_millions=millions, supports_dilation=True,
                               out_channels=SMP_OUT_CHANNELS[name])
    testing.check_smp_hub_weights(name, lambda tag: (testing.IMAGENET_PREPROCESSING
                                                     if tag == "imagenet"
                                                     else testing.HALF_PREPROCESSING))


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_on_the_meta_device(name: str) -> None:
    # The documentation truncates to whole millions (SMP's b1 encoder has 6.51M, listed "6M").
    testing.check_parameter_count(name, documented_millions=DOCUMENTED[name][1],
                                  no_keys_starting_with=("_fc.",))
