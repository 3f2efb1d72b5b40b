"""The plugin's own tests: the conformance kit, with the kit's tiny encoder (no encoder plugin
needed), and the options' error messages."""

from __future__ import annotations

import pytest
import torch
from segcore_example_architecture import ExampleFPN, ExampleFPNDecoder

import segcore
from segcore import testing
from segcore.errors import EncoderCapabilityError, InvalidOptionError, UnknownOptionError
from segcore.specs import EncoderSpec

TINY = testing.TINY_ENCODER


@pytest.fixture(autouse=True)
def tiny_encoder(segcore_isolation):
    # function-scoped and after segcore_isolation, which starts every test with a fresh registry
    with testing.tiny_encoder_installed():
        yield


def test_plugin_is_loaded():
    # SEGCORE_STRICT_PLUGINS is removed inside tests (segcore_isolation): assert the status
    record = next(r for r in segcore.plugin_records() if r.name == "example_architecture")
    assert record.status == "loaded", record.error


def test_follows_the_architecture_contract():
    testing.check_architecture("examplefpn", TINY)


def test_follows_the_contract_with_options():
    testing.check_architecture("examplefpn", TINY, depths=(3, 5), classes=(2,), in_channels=(3,),
                               pyramid_channels=16, pyramid_levels=3, decoder_dropout=0.2)


def test_dilated_encoder():
    testing.check_architecture("examplefpn", TINY, depths=(5,), classes=(2,), in_channels=(3,),
                               encoder_output_stride=8)


def test_found_by_name_and_class_name():
    assert "examplefpn" in segcore.list_architectures()
    assert segcore.ExampleFPN is ExampleFPN
    model = ExampleFPN(TINY, encoder_weights=None, classes=3).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 63, 65)).shape == (1, 3, 63, 65)
    assert model.config["pyramid_channels"] == 64


def test_bad_option_values_are_refused_with_clean_messages():
    with pytest.raises(InvalidOptionError, match="pyramid_channels must be a positive int"):
        segcore.build("examplefpn", encoder=TINY, pyramid_channels=0)
    with pytest.raises(InvalidOptionError, match=r"decoder_dropout must be a number in \[0, 1\)"):
        segcore.build("examplefpn", encoder=TINY, decoder_dropout=1.5)
    with pytest.raises(InvalidOptionError, match="pyramid_levels=5 is more than the 4 stages"):
        segcore.build("examplefpn", encoder=TINY, encoder_depth=4, pyramid_levels=5)


def test_a_misspelt_option_names_the_right_one():
    # unknown keyword arguments go to the encoder, which refuses them naming the options
    with pytest.raises(UnknownOptionError, match="Did you mean 'pyramid_channels'"):
        segcore.build("examplefpn", encoder=TINY, pyramid_channel=32)


def test_dilation_needs_an_encoder_that_supports_it():
    rigid = EncoderSpec(name="rigid-tiny", family="Testing",
                        factory="segcore.testing:build_tiny_encoder",
                        out_channels=(3, 8, 16, 24, 32, 40), supports_dilation=False)
    with testing.specs_installed(encoders=[rigid]):
        with pytest.raises(EncoderCapabilityError, match="cannot be dilated"):
            segcore.build("examplefpn", encoder="rigid-tiny", encoder_output_stride=16)


def test_decoder_skips_levels_an_encoder_leaves_empty():
    decoder = ExampleFPNDecoder((3, 0, 16, 24), pyramid_channels=8)
    assert decoder.stages == [2, 3]
    features = [torch.rand(1, 3, 33, 35), torch.rand(1, 0, 17, 18), torch.rand(1, 16, 9, 9),
                torch.rand(1, 24, 5, 5)]
    assert decoder(features).shape == (1, 8, 33, 35)
