"""FPN at run time: save/load, frozen encoder, predict, compile, export, lazy discovery."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from segcore_fpn import FPN
from torch import nn

import segcore
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
                     aux_params={"classes": 3, "dropout": 0.2}).eval()
    model.save_pretrained(tmp_path / "fpn")
    config = json.loads((tmp_path / "fpn" / "config.json").read_text())
    assert config["architecture"] == "fpn"
    assert config["decoder_merge_policy"] == "cat"
    assert config["upsampling"] == 2
    loaded = segcore.from_pretrained(tmp_path / "fpn").eval()
    assert type(loaded) is FPN
    assert loaded.options == model.options
    assert loaded.decoder.out_channels == 128
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        for actual, expected in zip(loaded(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_predict_switches_to_eval_and_returns_no_grad_output():
    model = tiny_fpn(classes=2, decoder_dropout=0.5).train()
    x = torch.randn(2, 3, 64, 64)
    mask = model.predict(x)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not mask.requires_grad
    torch.testing.assert_close(model.predict(x), mask)  # dropout off: deterministic


def test_freeze_encoder_keeps_batchnorm_statistics_and_trains_the_decoder():
    model = tiny_fpn().freeze_encoder()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in encoder_norms]
    model(torch.randn(2, 3, 64, 64) * 3 + 1).mean().backward()
    assert all(not m.training for m in encoder_norms)
    assert model.decoder.training and model.decoder.dropout.training
    for old, norm in zip(before, encoder_norms):
        torch.testing.assert_close(norm.running_mean, old)
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    model.unfreeze_encoder().train()
    assert all(m.training for m in encoder_norms)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_gradients_reach_every_decoder_and_head_parameter():
    model = tiny_fpn(decoder_merge_policy="cat", aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_compile_fullgraph_with_aux_head():
    model = tiny_fpn(aux_params={"classes": 3}, decoder_interpolation="bilinear").eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(compiled(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_torch_export():
    model = tiny_fpn(classes=3, decoder_merge_policy="cat").eval()
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_discovery_imports_no_model_code():
    code = (
        "import sys, segcore\n"
        "assert 'fpn' in segcore.list_architectures()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('segcore_fpn'))\n"
        "assert loaded == ['segcore_fpn', 'segcore_fpn.plugin'], loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
