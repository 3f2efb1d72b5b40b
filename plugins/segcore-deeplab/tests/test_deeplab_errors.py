"""Wrong options, wrong encoders and wrong depths give errors that say how to fix them."""

from __future__ import annotations

import attrs
import pytest
from segcore_deeplab import DeepLabV3Plus
from segcore_deeplab.decoder import ASPP, DeepLabV3PlusDecoder

import segcore
from segcore import testing
from segcore.errors import (
    EncoderCapabilityError,
    InvalidOptionError,
    UnknownOptionError,
)

TINY = testing.TINY_ENCODER
NO_DILATION = attrs.evolve(testing.TINY_ENCODER_SPEC, name="tiny-nodilation",
                           supports_dilation=False)
ARCHITECTURES = ["deeplabv3", "deeplabv3plus"]


tiny_encoder = testing.tiny_encoder_fixture()


def _build(architecture: str, encoder: str = TINY, **options):
    return segcore.build(architecture, encoder=encoder, **{"decoder_channels": 8, **options})


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("output_stride", [32, 4, 0, "16", 16.0, True, None])
def test_output_stride_must_be_8_or_16(architecture, output_stride):
    with pytest.raises(InvalidOptionError, match="encoder_output_stride must be 8 or 16") as error:
        _build(architecture, encoder_output_stride=output_stride)
    assert repr(output_stride) in str(error.value)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("rates", [(6, 12), (6, 12, 18, 24), ()])
def test_atrous_rates_need_three_values(architecture, rates):
    with pytest.raises(InvalidOptionError, match="decoder_atrous_rates must have 3 values"):
        _build(architecture, decoder_atrous_rates=rates)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("rates", [(6, 0, 18), (6, -1, 18), (6, 12.5, 18), "abc", 12])
def test_atrous_rates_must_be_positive_ints(architecture, rates):
    with pytest.raises(InvalidOptionError, match="decoder_atrous_rates must be a sequence"):
        _build(architecture, decoder_atrous_rates=rates)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize(("option", "value", "message"), [
    ("decoder_channels", 0, "decoder_channels must be a positive int"),
    ("decoder_channels", 16.0, "decoder_channels must be a positive int"),
    ("decoder_aspp_dropout", 1.0, r"decoder_aspp_dropout must be a number in \[0, 1\)"),
    ("decoder_aspp_dropout", -0.1, r"decoder_aspp_dropout must be a number in \[0, 1\)"),
    ("decoder_aspp_separable", "yes", "decoder_aspp_separable must be True or False"),
    ("upsampling", 0, "upsampling must be a positive int"),
])
def test_bad_option_values(architecture, option, value, message):
    with pytest.raises(InvalidOptionError, match=message):
        _build(architecture, **{option: value})


def test_deeplabv3plus_upsampling_cannot_be_none():
    with pytest.raises(InvalidOptionError, match="upsampling must be a positive int"):
        _build("deeplabv3plus", upsampling=None)


@pytest.mark.parametrize(("architecture", "typo", "meant"), [
    ("deeplabv3", "decoder_chanels", "decoder_channels"),
    ("deeplabv3", "decoder_aspp_droput", "decoder_aspp_dropout"),
    ("deeplabv3plus", "decoder_atrous_rate", "decoder_atrous_rates"),
    ("deeplabv3plus", "encoder_outputstride", "encoder_output_stride"),
])
def test_unknown_option_suggests_the_right_one(architecture, typo, meant):
    testing.check_unknown_options(architecture, typo, meant, decoder_channels=8)


def test_options_of_other_architectures_are_refused_like_python():
    with pytest.raises(UnknownOptionError):  # also a TypeError, as in Python
        DeepLabV3Plus(TINY, encoder_weights=None, decoder_use_norm=True)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("depth", [0, 1, 2, 6, "5"])
def test_encoder_depth_out_of_range(architecture, depth):
    words = (r"encoder_depth must be an int from 3 to 5, got '5'" if isinstance(depth, str)
             else r"encoder_depth=-?\d+ is too (small|large)")
    with pytest.raises(InvalidOptionError, match=words):
        _build(architecture, encoder_depth=depth)


@pytest.mark.parametrize(("architecture", "stride"), [("deeplabv3", 8), ("deeplabv3plus", 16)])
def test_encoder_without_dilation_is_refused(architecture, stride):
    with testing.specs_installed(encoders=[NO_DILATION]):
        with pytest.raises(EncoderCapabilityError) as error:
            _build(architecture, encoder="tiny-nodilation")
    message = str(error.value)
    assert "'tiny-nodilation' cannot be dilated" in message
    assert f"output_stride={stride}" in message
    assert f"{architecture} needs atrous convolution" in message
    assert "Choose an encoder that supports dilation" in message
    assert f"encoder_output_stride=8 or 16, here {stride}" in message
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(("architecture", "depth", "output_stride"), [
    ("deeplabv3", 3, 8), ("deeplabv3", 4, 16), ("deeplabv3plus", 3, 16),
    ("deeplabv3plus", 4, 16),
])
def test_encoder_without_dilation_fits_when_no_stage_is_dilated(architecture, depth,
                                                                 output_stride):
    import torch

    with testing.specs_installed(encoders=[NO_DILATION]):
        model = _build(architecture, encoder="tiny-nodilation", encoder_depth=depth,
                       encoder_output_stride=output_stride).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 64, 64)).shape) == (1, 1, 64, 64)


def test_decoders_check_their_arguments_when_used_alone():
    with pytest.raises(InvalidOptionError, match="three positive ints"):
        ASPP(8, 8, atrous_rates=(1, 2))
    with pytest.raises(EncoderCapabilityError, match="encoder depth of at least 3"):
        DeepLabV3PlusDecoder((3, 8, 16), encoder_depth=2)
