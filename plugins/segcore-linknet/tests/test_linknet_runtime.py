"""Linknet at run time: training, predict, frozen encoder, save/load, compile, export."""

from __future__ import annotations

import json

import pytest
import torch
from segcore_linknet import Linknet
from torch import nn

import segcore
from segcore import testing

TINY = testing.TINY_ENCODER


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_linknet(**kwargs) -> Linknet:
    torch.manual_seed(0)
    return Linknet(TINY, encoder_weights=None, **kwargs)


def test_every_decoder_parameter_gets_a_gradient():
    model = tiny_linknet(classes=2).train()
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    parameters = list(model.decoder.parameters()) + list(model.segmentation_head.parameters())
    assert parameters and all(p.grad is not None for p in parameters)


def test_predict_switches_to_eval_and_returns_no_grad_output():
    model = tiny_linknet(classes=2).train()
    x = torch.randn(2, 3, 64, 64)
    mask = model.predict(x)
    assert mask.shape == (2, 2, 64, 64)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not mask.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(mask, model(x))  # eval mode: deterministic


def test_predict_with_aux_head_returns_both_outputs():
    model = tiny_linknet(aux_params={"classes": 3, "activation": "sigmoid"})
    mask, labels = model.predict(torch.randn(1, 3, 32, 32))
    assert mask.shape == (1, 1, 32, 32) and labels.shape == (1, 3)


def test_freeze_encoder_keeps_batchnorm_statistics_through_train():
    model = tiny_linknet().freeze_encoder()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_norm = model.decoder.blocks[0].block[1][1]
    before = [m.running_mean.clone() for m in encoder_norms]
    decoder_before = decoder_norm.running_mean.clone()
    model(torch.randn(2, 3, 64, 64) * 3 + 1).mean().backward()
    assert all(not m.training for m in encoder_norms)
    assert model.decoder.training
    for old, norm in zip(before, encoder_norms):
        torch.testing.assert_close(norm.running_mean, old)
    assert not torch.allclose(decoder_norm.running_mean, decoder_before)  # decoder still learns
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    model.unfreeze_encoder().train()
    assert all(m.training for m in encoder_norms)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_linknet(classes=2, decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                         aux_params={"classes": 3, "dropout": 0.2}).eval()
    model.save_pretrained(tmp_path / "linknet")
    config = json.loads((tmp_path / "linknet" / "config.json").read_text())
    assert config["architecture"] == "linknet"
    assert config["decoder_use_norm"] == {"type": "layernorm", "eps": 1e-3}
    assert "decoder_use_batchnorm" not in config  # folded into decoder_use_norm
    loaded = segcore.from_pretrained(tmp_path / "linknet").eval()
    assert type(loaded) is Linknet
    assert loaded.options == model.options
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(loaded(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_round_trip_of_decoder_use_batchnorm_false_and_depth(tmp_path):
    model = tiny_linknet(decoder_use_batchnorm=False, encoder_depth=3, in_channels=4,
                         classes=3, activation="softmax").eval()
    model.save_pretrained(tmp_path)
    loaded = segcore.from_pretrained(tmp_path).eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())
    assert len(loaded.decoder.blocks) == 3
    x = torch.randn(1, 4, 40, 24)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_state_dict_loads_strictly_into_a_fresh_model():
    model = tiny_linknet(classes=2).eval()
    other = Linknet(TINY, encoder_weights=None, classes=2).eval()
    other.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x))


def test_channels_last_gives_the_same_output():
    model = tiny_linknet(classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        actual = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_compile_fullgraph_with_aux_head():
    model = tiny_linknet(classes=2, aux_params={"classes": 3}).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(compiled(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_torch_export():
    model = tiny_linknet(classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))
