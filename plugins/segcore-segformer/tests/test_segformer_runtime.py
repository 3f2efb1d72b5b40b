"""Segformer at run time: save/load, frozen encoder, predict, compile, export, lazy discovery."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from segcore_segformer import Segformer
from torch import nn

import segcore
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
                           aux_params={"classes": 3, "dropout": 0.2}).eval()
    with torch.no_grad():  # trained-looking norm statistics, so the comparison means something
        model.decoder.fuse_stage[1].running_mean.normal_()
        model.decoder.fuse_stage[1].running_var.uniform_(0.5, 2.0)
    model.save_pretrained(tmp_path / "segformer")
    config = json.loads((tmp_path / "segformer" / "config.json").read_text())
    assert config["architecture"] == "segformer"
    assert config["decoder_segmentation_channels"] == 24
    assert config["upsampling"] == 2
    assert config["encoder_depth"] == 4
    loaded = segcore.from_pretrained(tmp_path / "segformer").eval()
    assert type(loaded) is Segformer
    assert loaded.options == model.options
    assert len(loaded.decoder.mlp_stage) == 4
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        for actual, expected in zip(loaded(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_predict_switches_to_eval_and_returns_no_grad_output():
    model = tiny_segformer(classes=2).train()
    x = torch.randn(2, 3, 64, 64)
    mask = model.predict(x)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not mask.requires_grad
    assert mask.shape == (2, 2, 64, 64)
    torch.testing.assert_close(model.predict(x), mask)


def test_freeze_encoder_keeps_batchnorm_statistics_and_trains_the_decoder():
    model = tiny_segformer().freeze_encoder()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in encoder_norms]
    decoder_norm = model.decoder.fuse_stage[1]
    decoder_before = decoder_norm.running_mean.clone()
    model(torch.randn(2, 3, 64, 64) * 3 + 1).mean().backward()
    assert all(not m.training for m in encoder_norms)
    assert model.decoder.training and decoder_norm.training
    for old, norm in zip(before, encoder_norms):
        torch.testing.assert_close(norm.running_mean, old)
    assert not torch.equal(decoder_norm.running_mean, decoder_before)  # the decoder trains
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    model.unfreeze_encoder().train()
    assert all(m.training for m in encoder_norms)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_gradients_reach_every_decoder_and_head_parameter():
    model = tiny_segformer(aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_compile_fullgraph_with_aux_head():
    model = tiny_segformer(aux_params={"classes": 3}).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(compiled(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_torch_export():
    model = tiny_segformer(classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_discovery_imports_no_model_code():
    code = (
        "import sys, segcore\n"
        "assert 'segformer' in segcore.list_architectures()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('segcore_segformer'))\n"
        "assert loaded == ['segcore_segformer', 'segcore_segformer.plugin'], loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
