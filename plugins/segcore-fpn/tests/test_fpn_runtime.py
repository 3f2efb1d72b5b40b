"""FPN at run time: save/load, gradients, compile, export, lazy discovery.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_fpn_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_fpn import FPN

from segcore import testing

TINY = testing.TINY_ENCODER
SMALL = {"decoder_pyramid_channels": 16, "decoder_segmentation_channels": 32}


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_fpn(**kwargs) -> FPN:
    torch.manual_seed(0)
    return FPN(TINY, encoder_weights=None, **{**SMALL, **kwargs})


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_fpn(classes=2, decoder_merge_policy="cat", decoder_interpolation="bilinear",
                     decoder_dropout=0.3, upsampling=2, encoder_depth=4,
                     aux_params={"classes": 3, "dropout": 0.2})
    loaded = testing.check_save_load(model, torch.randn(1, 3, 64, 48), tmp_path / "fpn")
    config = json.loads((tmp_path / "fpn" / "config.json").read_text())
    assert config["_architecture"] == "fpn"  # segcore's key; SMP reads "_model_class"
    assert config["decoder_merge_policy"] == "cat"
    assert config["upsampling"] == 2
    assert loaded.decoder.out_channels == 128


def test_gradients_reach_every_decoder_and_head_parameter():
    model = tiny_fpn(decoder_merge_policy="cat", aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_fpn(aux_params={"classes": 3}, decoder_interpolation="bilinear"),
                          torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_fpn(classes=3, decoder_merge_policy="cat"),
                         torch.randn(1, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("fpn", "segcore_fpn")
