"""UnetPlusPlus at run time: compile, export, channels_last, predict, frozen encoder, save/load."""

from __future__ import annotations

import json

import pytest
import torch
from segcore_unetplusplus import UnetPlusPlus
from torch import nn

import segcore
from segcore import testing

TINY = testing.TINY_ENCODER
SMALL = (32, 24, 16, 12, 8)


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_model(**kwargs) -> UnetPlusPlus:
    kwargs.setdefault("decoder_channels", SMALL[: kwargs.get("encoder_depth", 5)])
    torch.manual_seed(0)
    return UnetPlusPlus(TINY, encoder_weights=None, **kwargs)


def test_compile_fullgraph():
    model = tiny_model(classes=2, encoder_depth=4, decoder_attention_type="scse",
                       aux_params={"classes": 3}).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(compiled(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_torch_export():
    model = tiny_model(classes=3, decoder_interpolation="bilinear", encoder_depth=4).eval()
    x = torch.randn(1, 3, 64, 48)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_channels_last_gives_the_same_output():
    model = tiny_model(classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        actual = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_predict_switches_to_eval_and_returns_no_grad_output():
    model = tiny_model(classes=2).train()
    x = torch.randn(2, 3, 64, 64)
    mask = model.predict(x)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not mask.requires_grad
    assert mask.shape == (2, 2, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(mask, model(x))  # eval mode: deterministic


def test_predict_with_aux_head_returns_both():
    model = tiny_model(aux_params={"classes": 3, "activation": "sigmoid"})
    mask, labels = model.predict(torch.randn(1, 3, 64, 64))
    assert mask.shape == (1, 1, 64, 64) and labels.shape == (1, 3)
    assert bool(((labels >= 0) & (labels <= 1)).all())


def test_freeze_encoder_keeps_batchnorm_statistics_through_train():
    model = tiny_model().freeze_encoder()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_norm = model.decoder.blocks["x_0_0"].conv1[1]
    before = [m.running_mean.clone() for m in encoder_norms]
    decoder_before = decoder_norm.running_mean.clone()
    model(torch.randn(2, 3, 64, 64) * 3 + 1).mean().backward()
    assert all(not m.training for m in encoder_norms)
    assert model.decoder.training
    for old, norm in zip(before, encoder_norms):
        torch.testing.assert_close(norm.running_mean, old)
    assert not torch.allclose(decoder_norm.running_mean, decoder_before)  # decoder still learns
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters() if p.requires_grad)
    model.unfreeze_encoder().train()
    assert all(m.training for m in encoder_norms)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_model(classes=2, decoder_attention_type="scse", decoder_interpolation="bilinear",
                       decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                       aux_params={"classes": 3, "dropout": 0.2}).eval()
    model.save_pretrained(tmp_path / "upp")
    config = json.loads((tmp_path / "upp" / "config.json").read_text())
    assert config["architecture"] == "unetplusplus"
    assert config["decoder_use_norm"] == {"type": "layernorm", "eps": 1e-3}
    assert config["decoder_channels"] == list(SMALL)
    loaded = segcore.from_pretrained(tmp_path / "upp").eval()
    assert type(loaded) is UnetPlusPlus
    assert loaded.options == model.options
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(loaded(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_round_trip_of_a_shallower_model_without_batchnorm(tmp_path):
    model = tiny_model(encoder_depth=3, decoder_use_batchnorm=False, in_channels=4).eval()
    model.save_pretrained(tmp_path)
    loaded = segcore.from_pretrained(tmp_path).eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())
    assert list(loaded.decoder.blocks) == ["x_0_0", "x_0_1", "x_1_1", "x_0_2"]
    x = torch.randn(1, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_a_training_step_changes_the_decoder_and_the_head():
    model = tiny_model(classes=2).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = torch.randint(0, 2, (2, 64, 64))
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 64, 64)), target)
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    for key in ("decoder.blocks.x_3_3.conv1.0.weight", "decoder.blocks.x_0_4.conv2.0.weight",
                "segmentation_head.0.weight", "encoder.stages.0.0.weight"):
        assert not torch.equal(before[key], after[key]), key
