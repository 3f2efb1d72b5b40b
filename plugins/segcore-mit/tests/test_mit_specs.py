"""The specs of segcore-mit: names, tags, sources, parameter counts, lazy listing."""

from __future__ import annotations

import pytest

import segcore
from segcore import testing
from segcore.errors import EncoderCapabilityError
from segcore.factory import get_encoder_spec

# From the reference documentation ("Mix Visual Transformer"): weight tags and params (millions).
DOCUMENTED = {
    "mit_b0": (("imagenet",), 3),
    "mit_b1": (("imagenet",), 13),
    "mit_b2": (("imagenet",), 24),
    "mit_b3": (("imagenet",), 44),
    "mit_b4": (("imagenet",), 60),
    "mit_b5": (("imagenet",), 81),
}
# SMP 0.6.0 (encoders/mix_transformer.py): out_channels and the pinned revisions of
# smp-hub/<name>.imagenet.
SMP_OUT_CHANNELS = {
    "mit_b0": (3, 0, 32, 64, 160, 256),
    **{name: (3, 0, 64, 128, 320, 512) for name in ("mit_b1", "mit_b2", "mit_b3", "mit_b4",
                                                     "mit_b5")},
}
SMP_REVISIONS = {
    "mit_b0": "9ce53d104d92d75aabb00aae70677aaab67e7c84",
    "mit_b1": "a04bf4f13a549bce677cf79b04852e7510782817",
    "mit_b2": "868ab6f13871dcf8c3d9f90ee4519403475b65ef",
    "mit_b3": "32558d12a65f1daa0ebcf4f4053c4285e2c1cbda",
    "mit_b4": "3a3454e900a4b4f11dd60eeb59101a9a1a36b017",
    "mit_b5": "ced04d96c586b6297fd59a7a1e244fc78fdb6531",
}
# Parameters of SMP 0.6.0's encoders (in_channels=3), counted once with SMP.
SMP_PARAMETERS = {
    "mit_b0": 3_319_392,
    "mit_b1": 13_151_424,
    "mit_b2": 24_196_288,
    "mit_b3": 44_072_128,
    "mit_b4": 60_842_688,
    "mit_b5": 81_443_008,
}


def test_listing_imports_no_implementation_and_building_imports_no_timm() -> None:
    report = testing.check_lazy_encoder_listing("segcore_mit", DOCUMENTED, pattern="mit_*",
                                                forbidden=("timm",),
                                                then="segcore.get_encoder('mit_b0')")
    assert "segcore_mit.encoder" in report["then"]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_smp(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    testing.check_encoder_spec(name, tags=tags, family="Mix Visual Transformer",
                               params_millions=millions, supports_dilation=False,
                               out_channels=SMP_OUT_CHANNELS[name])
    testing.check_smp_hub_weights(name, testing.IMAGENET_PREPROCESSING,
                                  revisions={"imagenet": SMP_REVISIONS[name]})
    assert segcore.get_preprocessing_params(name) == testing.IMAGENET_PREPROCESSING


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_match_the_documentation(name: str) -> None:
    # The documentation truncates to whole millions (mit_b0: 3.32M is "3M").
    testing.check_parameter_count(name, count=SMP_PARAMETERS[name],
                                  documented_millions=DOCUMENTED[name][1])


# testing.check_encoder checks the refusal of output_stride 8 and 16 for every name.
def test_dilation_refusal_covers_every_name_before_building() -> None:
    for name in DOCUMENTED:
        assert not get_encoder_spec(name).supports_dilation
    module = segcore.get_encoder("mit_b0")
    with pytest.raises(EncoderCapabilityError):
        module.make_dilated(16)  # the module refuses too (no get_stages)
