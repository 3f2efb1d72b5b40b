"""Linknet at run time: save/load, state dicts, channels_last, compile, export.

Gradients, predict, freeze_encoder and the plain save/load round trip are checked by the
conformance kit (``testing.check_architecture`` in test_linknet_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_linknet import Linknet
from torch import nn

from segcore import testing

TINY = testing.TINY_ENCODER


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_linknet(**kwargs) -> Linknet:
    torch.manual_seed(0)
    return Linknet(TINY, encoder_weights=None, **kwargs)


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_linknet(classes=2, decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                         aux_params={"classes": 3, "dropout": 0.2})
    testing.check_save_load(model, torch.randn(1, 3, 64, 96), tmp_path / "linknet")
    config = json.loads((tmp_path / "linknet" / "config.json").read_text())
    assert config["_architecture"] == "linknet"  # segcore's key; SMP reads "_model_class"
    assert config["decoder_use_norm"] == {"type": "layernorm", "eps": 1e-3}
    assert "decoder_use_batchnorm" not in config  # folded into decoder_use_norm


def test_round_trip_of_decoder_use_batchnorm_false_and_depth(tmp_path):
    model = tiny_linknet(decoder_use_batchnorm=False, encoder_depth=3, in_channels=4,
                         classes=3, activation="softmax")
    loaded = testing.check_save_load(model, torch.randn(1, 4, 40, 24), tmp_path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())
    assert len(loaded.decoder.blocks) == 3


def test_state_dict_loads_strictly_into_a_fresh_model():
    model = tiny_linknet(classes=2).eval()
    other = Linknet(TINY, encoder_weights=None, classes=2).eval()
    other.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_linknet(classes=2), torch.randn(2, 3, 64, 64))


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_linknet(classes=2, aux_params={"classes": 3}),
                          torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_linknet(classes=3), torch.randn(1, 3, 64, 64))
