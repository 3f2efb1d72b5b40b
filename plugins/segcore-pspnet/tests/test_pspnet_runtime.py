"""PSPNet at run time: save/load, frozen encoder, predict, compile, export, lazy discovery."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from segcore_pspnet import PSPNet
from torch import nn

import segcore
from segcore import testing

TINY = testing.TINY_ENCODER
SMALL = {"psp_out_channels": 16}


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_pspnet(**kwargs) -> PSPNet:
    torch.manual_seed(0)
    return PSPNet(TINY, encoder_weights=None, **{**SMALL, **kwargs})


def _trained_looking(model):
    """Non-trivial normalisation statistics, so that comparisons mean something."""
    torch.manual_seed(2)
    with torch.no_grad():
        for name, tensor in model.decoder.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.1)
    return model


@pytest.mark.parametrize(
    "options",
    [
        {"classes": 2, "psp_dropout": 0.3, "upsampling": 16, "encoder_depth": 4,
         "aux_params": {"classes": 3, "dropout": 0.2}},
        {"psp_use_batchnorm": False, "activation": "sigmoid"},
        {"decoder_use_norm": {"type": "layernorm", "eps": 1e-3}, "in_channels": 1},
    ],
    ids=["aux-depth-4", "no-norm", "layernorm-dict"],
)
def test_save_pretrained_round_trip(tmp_path, options):
    model = _trained_looking(tiny_pspnet(**options)).eval()
    model.save_pretrained(tmp_path / "pspnet")
    config = json.loads((tmp_path / "pspnet" / "config.json").read_text())
    assert config["architecture"] == "pspnet"
    assert config["encoder_depth"] == options.get("encoder_depth", 3)
    assert config["psp_out_channels"] == 16
    loaded = segcore.from_pretrained(tmp_path / "pspnet").eval()
    assert type(loaded) is PSPNet
    assert loaded.options == model.options
    assert loaded.state_dict().keys() == model.state_dict().keys()
    x = torch.randn(1, options.get("in_channels", 3), 64, 48)
    with torch.no_grad():
        expected, actual = model(x), loaded(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)


def test_round_trip_of_psp_use_batchnorm_false_keeps_no_batchnorm(tmp_path):
    model = tiny_pspnet(psp_use_batchnorm=False).eval()
    model.save_pretrained(tmp_path)
    loaded = segcore.from_pretrained(tmp_path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())


def test_predict_switches_to_eval_and_returns_no_grad_output():
    model = tiny_pspnet(classes=2, psp_dropout=0.5).train()
    x = torch.randn(2, 3, 64, 64)
    mask = model.predict(x)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not mask.requires_grad
    assert mask.shape == (2, 2, 64, 64)
    torch.testing.assert_close(model.predict(x), mask)  # dropout off: deterministic


def test_freeze_encoder_keeps_batchnorm_statistics_and_trains_the_decoder():
    model = tiny_pspnet().freeze_encoder()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in encoder_norms]
    decoder_norm = model.decoder.conv[1]
    decoder_before = decoder_norm.running_mean.clone()
    model(torch.randn(2, 3, 64, 64) * 3 + 1).mean().backward()
    assert all(not m.training for m in encoder_norms)
    assert model.decoder.training and model.decoder.dropout.training
    for old, norm in zip(before, encoder_norms):
        torch.testing.assert_close(norm.running_mean, old)
    assert not torch.allclose(decoder_norm.running_mean, decoder_before)  # decoder still learns
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    model.unfreeze_encoder().train()
    assert all(m.training for m in encoder_norms)
    assert all(p.requires_grad for p in model.encoder.parameters())


def test_gradients_reach_every_decoder_and_head_parameter():
    model = tiny_pspnet(aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        if not name.startswith("encoder."):  # (the tiny encoder keeps its unused stages)
            assert parameter.grad is not None, name


def test_training_with_a_batch_of_one():
    # the 1x1 pyramid level has no batch norm, so a single image trains (as in SMP)
    model = tiny_pspnet().train()
    model(torch.randn(1, 3, 64, 64)).mean().backward()


def test_compile_fullgraph_with_aux_head():
    model = tiny_pspnet(aux_params={"classes": 3}).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for actual, expected in zip(compiled(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_torch_export():
    model = tiny_pspnet(classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_channels_last_gives_the_same_output():
    model = _trained_looking(tiny_pspnet(classes=2)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        actual = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_discovery_imports_no_model_code():
    code = (
        "import sys, segcore\n"
        "assert 'pspnet' in segcore.list_architectures()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('segcore_pspnet'))\n"
        "assert loaded == ['segcore_pspnet', 'segcore_pspnet.plugin'], loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
