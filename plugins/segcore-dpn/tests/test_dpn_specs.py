"""The specs of segcore-dpn: names, tags, sources, preprocessing, parameter counts, listing."""

from __future__ import annotations

import pytest

import segcore
from segcore import testing

# From the reference documentation ("Available Encoders", DPN): weight tags, params (millions).
DOCUMENTED = {
    "dpn68": (("imagenet",), 11),
    "dpn68b": (("imagenet+5k",), 11),
    "dpn92": (("imagenet+5k",), 34),
    "dpn98": (("imagenet",), 58),
    "dpn107": (("imagenet+5k",), 84),
    "dpn131": (("imagenet",), 76),
}
# SMP 0.6.0's out_channels (encoders/dpn.py).
SMP_OUT_CHANNELS = {
    "dpn68": (3, 10, 144, 320, 704, 832),
    "dpn68b": (3, 10, 144, 320, 704, 832),
    "dpn92": (3, 64, 336, 704, 1552, 2688),
    "dpn98": (3, 96, 336, 768, 1728, 2688),
    "dpn107": (3, 128, 376, 1152, 2432, 2688),
    "dpn131": (3, 128, 352, 832, 1984, 2688),
}
DPN_PREPROCESSING = {"input_space": "RGB", "input_range": [0.0, 1.0],
                     "mean": [124 / 255, 117 / 255, 104 / 255], "std": [1 / (0.0167 * 255)] * 3}


def test_documented_values_are_the_catalogue_rows() -> None:
    from segcore._catalog import documented_encoders, encoder_package

    catalogue = {name: row for name, row in documented_encoders().items()
                 if name.startswith("dpn")}
    assert catalogue == {name: ("DPN", tags, float(millions))
                         for name, (tags, millions) in DOCUMENTED.items()}
    assert {encoder_package(name) for name in catalogue} == {"segcore-dpn"}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    testing.check_lazy_encoder_listing("segcore_dpn", DOCUMENTED, pattern="dpn*", exact=True,
                                       forbidden=("timm",))


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_smp(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    testing.check_encoder_spec(name, tags=tags, family="DPN", params_millions=millions,
                               supports_dilation=True, out_channels=SMP_OUT_CHANNELS[name])
    # SMP's repositories spell "+" as "-": smp-hub/dpn92.imagenet-5k
    testing.check_smp_hub_weights(name, DPN_PREPROCESSING)


def test_preprocessing_function_uses_the_dpn_statistics() -> None:
    params = segcore.get_preprocessing_params("dpn92", pretrained="imagenet+5k")
    assert params["mean"] == pytest.approx([0.48627, 0.45882, 0.40784], abs=1e-5)
    assert params["std"] == pytest.approx([0.23482] * 3, abs=1e-5)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_match_the_documentation(name: str) -> None:
    # The documentation truncates to whole millions (dpn68: 11.78M is listed as 11M).
    testing.check_parameter_count(name, documented_millions=DOCUMENTED[name][1])
