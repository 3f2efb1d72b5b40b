"""Unet at run time: compile, export, channels_last, save/load with many options.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_unet_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_unet import Unet

from segcore import testing

TINY = testing.TINY_ENCODER
SMALL = (32, 24, 16, 12, 8)


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_unet(**kwargs) -> Unet:
    kwargs.setdefault("decoder_channels", SMALL)
    torch.manual_seed(0)
    return Unet(TINY, encoder_weights=None, **kwargs)


def test_compile_fullgraph_on_an_odd_size():
    testing.check_compile(tiny_unet(classes=2, decoder_attention_type="scse"),
                          torch.randn(1, 3, 63, 65))


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_unet(aux_params={"classes": 3}), torch.randn(2, 3, 64, 64))


def test_torch_export():
    testing.check_export(tiny_unet(classes=3, decoder_interpolation="bilinear"),
                         torch.randn(1, 3, 63, 65))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_unet(classes=2), torch.randn(2, 3, 64, 64))


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_unet(classes=2, decoder_attention_type="scse", decoder_interpolation="bilinear",
                      decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                      aux_params={"classes": 3, "dropout": 0.2})
    testing.check_save_load(model, torch.randn(1, 3, 63, 65), tmp_path / "unet")
    config = json.loads((tmp_path / "unet" / "config.json").read_text())
    assert config["_architecture"] == "unet"  # segcore's key; SMP reads "_model_class"
    assert config["decoder_use_norm"] == {"type": "layernorm", "eps": 1e-3}
