"""Segformer at run time: save/load, gradients, compile, export, lazy discovery.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_segformer_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_segformer import Segformer

from segcore import testing

TINY = testing.TINY_ENCODER
SMALL = {"decoder_segmentation_channels": 16}


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_segformer(**kwargs) -> Segformer:
    torch.manual_seed(0)
    return Segformer(TINY, encoder_weights=None, **{**SMALL, **kwargs})


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_segformer(classes=2, decoder_segmentation_channels=24, upsampling=2,
                           encoder_depth=4, activation="sigmoid",
                           aux_params={"classes": 3, "dropout": 0.2})
    with torch.no_grad():  # trained-looking norm statistics, so the comparison means something
        model.decoder.fuse_stage[1].running_mean.normal_()
        model.decoder.fuse_stage[1].running_var.uniform_(0.5, 2.0)
    loaded = testing.check_save_load(model, torch.randn(1, 3, 64, 48), tmp_path / "segformer")
    config = json.loads((tmp_path / "segformer" / "config.json").read_text())
    assert config["_architecture"] == "segformer"  # segcore's key; SMP reads "_model_class"
    assert config["decoder_segmentation_channels"] == 24
    assert config["upsampling"] == 2
    assert config["encoder_depth"] == 4
    assert len(loaded.decoder.mlp_stage) == 4


def test_gradients_reach_every_decoder_and_head_parameter():
    model = tiny_segformer(aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_segformer(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_segformer(classes=3), torch.randn(1, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("segformer", "segcore_segformer")
