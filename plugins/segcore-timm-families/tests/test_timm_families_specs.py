"""The specs of segcore-timm-families: names, tags, sources, sizes, channels, lazy listing."""

from __future__ import annotations

import re
import warnings

import pytest
import timm

import segcore
from segcore import testing
from segcore._catalog import documented_encoders
from segcore.factory import get_encoder_spec

_SERVED = re.compile(r"^timm-(resnest|res2net|res2next|regnetx_|regnety_|gernet_|mobilenetv3_)")
DOCUMENTED = {name: row for name, row in documented_encoders().items() if _SERVED.match(name)}


def test_every_documented_name_is_served() -> None:
    assert len(DOCUMENTED) == 48
    assert set(DOCUMENTED) <= set(segcore.list_encoders("timm-*"))


def test_listing_imports_neither_the_encoder_module_nor_timm() -> None:
    # nor does reading the weight sources of the listed names
    testing.check_lazy_encoder_listing(
        "segcore_timm_families", DOCUMENTED, pattern="timm-*",
        forbidden=("timm", "segcore_timm.encoder", "segcore_timm_families.encoder"),
        then="from segcore.factory import get_encoder_spec\n"
             "info = [get_encoder_spec(n).weights['imagenet'] for n in names\n"
             "        if n.startswith('timm-reg')]",
    )


def _timm_model(name: str) -> str:
    """SMP 0.6.0's mapping: timm-X -> X, timm-mobilenetv3_X -> tf_mobilenetv3_X."""
    model = name.removeprefix("timm-")
    return "tf_" + model if model.startswith("mobilenetv3") else model


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_timm(name: str) -> None:
    family, tags, millions = DOCUMENTED[name]
    spec = get_encoder_spec(name)
    assert spec.family == family
    assert tuple(spec.weights) == tags == ("imagenet",)
    assert spec.params_millions == millions
    assert spec.native_setup and spec.accepts_kwargs
    assert spec.params["timm_model"] == _timm_model(name)
    # "imagenet" is timm's default pretrained tag: what SMP 0.6.0 loads for the tu- name.
    config = timm.models.get_pretrained_cfg(_timm_model(name))
    assert spec.params["timm_tag"] == config.tag
    source = spec.weights["imagenet"]
    assert source.delegate and source.url is None
    assert f"timm/{_timm_model(name)}.{config.tag}" in source.description
    assert source.preprocessing.mean == tuple(config.mean)
    assert source.preprocessing.std == tuple(config.std)
    assert source.preprocessing.input_space == "RGB"
    assert source.preprocessing.input_range == (0.0, 1.0)
    # what segcore-timm finds for the same timm model (through the registry)
    layout = get_encoder_spec(f"tu-{_timm_model(name)}.{config.tag}")
    assert spec.out_channels == layout.out_channels
    assert spec.supports_dilation == layout.supports_dilation


def test_preprocessing_of_the_tf_mobilenets_is_inception() -> None:
    params = segcore.get_preprocessing_params("timm-mobilenetv3_large_100")
    assert params["mean"] == [0.5, 0.5, 0.5] and params["std"] == [0.5, 0.5, 0.5]
    params = segcore.get_preprocessing_params("timm-regnety_016", pretrained="imagenet")
    assert params["mean"] == [0.485, 0.456, 0.406]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels(name: str) -> None:
    # within 2%, or the documentation's truncation to whole millions (8.56M is "8M");
    # on the meta device: no memory, no initialisation (RegNetY-32GF has 141M)
    testing.check_parameter_count(name, documented_millions=DOCUMENTED[name][2], tolerance=0.02)


def test_the_size_rule_is_strict() -> None:
    def agrees(millions: float, documented: float) -> bool:
        return testing.agrees_with_documented_size(millions, documented, tolerance=0.02)

    assert agrees(8.56, 8) and agrees(0.927, 0.93)
    assert not agrees(9.01, 8)
    assert agrees(7.9, 8) and not agrees(7.8, 8)
    assert not agrees(0.96, 0.93)


def test_documented_names_build_without_deprecation_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder = segcore.get_encoder("timm-mobilenetv3_small_minimal_100", depth=3)
    assert encoder.encoder_name == "timm-mobilenetv3_small_minimal_100"
    assert all(key.startswith("model.") for key in encoder.state_dict())  # SMP 0.6.0's layout
