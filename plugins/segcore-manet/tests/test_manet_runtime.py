"""MAnet at run time: compile, export, channels_last, predict, frozen encoder, save/load."""

from __future__ import annotations

import json

import pytest
import torch
from segcore_manet import MAnet
from torch import nn

import segcore
from segcore import testing

TINY = testing.TINY_ENCODER
SMALL = (32, 24, 16, 12, 8)


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_manet(**kwargs) -> MAnet:
    kwargs.setdefault("decoder_channels", SMALL[: kwargs.get("encoder_depth", 5)])
    torch.manual_seed(0)
    return MAnet(TINY, encoder_weights=None, **kwargs)


def test_compile_fullgraph_with_aux_head():
    model = tiny_manet(classes=2, aux_params={"classes": 3}).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(compiled(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_torch_export():
    model = tiny_manet(classes=3, decoder_interpolation="bilinear").eval()
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_channels_last_gives_the_same_output():
    model = tiny_manet(classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        actual = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_batch_items_are_independent_in_eval_mode():
    # the attention softmax runs per image: another image in the batch changes nothing
    model = tiny_manet(classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]), rtol=1e-4, atol=1e-5)


def test_predict_switches_to_eval_and_returns_no_grad_output():
    model = tiny_manet(classes=2).train()
    x = torch.randn(2, 3, 64, 64)
    mask = model.predict(x)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not mask.requires_grad
    assert mask.shape == (2, 2, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(mask, model(x))  # eval mode: deterministic


def test_training_step_reaches_every_decoder_parameter():
    model = tiny_manet(classes=2, decoder_pab_channels=4).train()
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    for name, parameter in model.decoder.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_freeze_encoder_keeps_batchnorm_statistics_through_train():
    model = tiny_manet().freeze_encoder()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_norm = model.decoder.blocks[0].conv1[1]
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
    model = tiny_manet(encoder_depth=4, classes=2, in_channels=4, decoder_pab_channels=12,
                       decoder_interpolation="bilinear",
                       decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                       aux_params={"classes": 3, "dropout": 0.2}).eval()
    model.save_pretrained(tmp_path / "manet")
    config = json.loads((tmp_path / "manet" / "config.json").read_text())
    assert config["architecture"] == "manet"
    assert config["decoder_use_norm"] == {"type": "layernorm", "eps": 1e-3}
    assert config["decoder_pab_channels"] == 12
    assert config["decoder_channels"] == list(SMALL[:4])
    loaded = segcore.from_pretrained(tmp_path / "manet").eval()
    assert type(loaded) is MAnet
    assert loaded.options == model.options
    x = torch.randn(1, 4, 64, 48)
    with torch.no_grad():
        for actual, expected in zip(loaded(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_round_trip_of_decoder_use_batchnorm_false(tmp_path):
    model = tiny_manet(decoder_use_batchnorm=False).eval()
    model.save_pretrained(tmp_path)
    loaded = segcore.from_pretrained(tmp_path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), model(x))


def test_from_config_rebuilds_the_same_architecture():
    model = tiny_manet(encoder_depth=3, decoder_pab_channels=5, activation="sigmoid")
    rebuilt = segcore.from_config(model.config)
    assert type(rebuilt) is MAnet
    assert rebuilt.options == model.options
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}
