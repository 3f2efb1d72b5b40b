"""PAN at run time: save/load, frozen encoder, predict, compile, export, lazy discovery."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from segcore_pan import PAN
from torch import nn

import segcore
from segcore import testing

TINY = testing.TINY_ENCODER
SIZE = 128


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_pan(**kwargs) -> PAN:
    torch.manual_seed(0)
    return PAN(TINY, encoder_weights=None, **kwargs)


def _train_a_little(model: PAN) -> None:
    """A few steps so weights and normalisation statistics differ from their initial values."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        output = model(torch.randn(2, 3, SIZE, SIZE))
        mask = output[0] if isinstance(output, tuple) else output
        mask.pow(2).mean().backward()
        optimizer.step()


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_pan(classes=2, encoder_output_stride=32, decoder_channels=8,
                     decoder_interpolation="bicubic", upsampling=2, encoder_depth=4,
                     aux_params={"classes": 3, "dropout": 0.2})
    _train_a_little(model)
    model.eval()
    model.save_pretrained(tmp_path / "pan")
    config = json.loads((tmp_path / "pan" / "config.json").read_text())
    assert config["architecture"] == "pan"
    assert config["encoder_output_stride"] == 32
    assert config["decoder_interpolation"] == "bicubic"
    assert config["encoder_depth"] == 4
    loaded = segcore.from_pretrained(tmp_path / "pan").eval()
    assert type(loaded) is PAN
    assert loaded.options == model.options
    assert [n for n, _ in loaded.decoder.named_children()] == ["fpa", "gau2", "gau1"]
    x = torch.randn(1, 3, SIZE, 144)
    with torch.no_grad():
        for actual, expected in zip(loaded(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_predict_switches_to_eval_and_returns_no_grad_output():
    model = tiny_pan(classes=2, aux_params={"classes": 2, "dropout": 0.5}).train()
    x = torch.randn(2, 3, SIZE, SIZE)
    mask, labels = model.predict(x)
    assert not model.training
    assert not any(m.training for m in model.modules())
    assert not mask.requires_grad and mask.is_inference()
    with torch.no_grad():  # eval mode: deterministic
        for actual, expected in zip(model(x), (mask, labels)):
            torch.testing.assert_close(actual, expected)


def test_freeze_encoder_keeps_batchnorm_statistics_and_trains_the_decoder():
    model = tiny_pan().freeze_encoder()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_norm = model.decoder.gau1.conv2.bn
    before = [m.running_mean.clone() for m in encoder_norms]
    decoder_before = decoder_norm.running_mean.clone()
    model(torch.randn(2, 3, SIZE, SIZE) * 3 + 1).mean().backward()
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


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_gradients_reach_every_parameter(depth):
    model = tiny_pan(encoder_depth=depth, aux_params={"classes": 2}).train()
    size = 64 if depth == 3 else SIZE
    mask, labels = model(torch.randn(2, 3, size, size))
    (mask.mean() + labels.mean()).backward()
    unused = tuple(f"encoder.stages.{stage}." for stage in range(depth, 5))  # tiny encoder
    for name, parameter in model.named_parameters():
        if not name.startswith(unused):
            assert parameter.grad is not None, name


def test_compile_fullgraph_with_aux_head():
    model = tiny_pan(aux_params={"classes": 3}, decoder_interpolation="nearest").eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, SIZE, 160)
    with torch.no_grad():
        for actual, expected in zip(compiled(x), model(x)):
            torch.testing.assert_close(actual, expected)


def test_torch_export():
    model = tiny_pan(classes=3, encoder_depth=4).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_discovery_imports_no_model_code():
    code = (
        "import sys, segcore\n"
        "assert 'pan' in segcore.list_architectures()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('segcore_pan'))\n"
        "assert loaded == ['segcore_pan', 'segcore_pan.plugin'], loaded\n"
        "import segcore_pan\n"
        "assert segcore.PAN is segcore_pan.PAN\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("depth", [3, 4, 5])
def test_decoder_compiles_with_torchscript(depth):
    from segcore_pan.decoder import PANDecoder

    channels = (3, 8, 16, 24, 32, 40)[: depth + 1]
    decoder = PANDecoder(channels, depth, decoder_channels=8, interpolation_mode="nearest").eval()
    scripted = torch.jit.script(decoder)
    cap = min(16, 2**depth)
    features = [torch.randn(1, c, 8 * cap // min(2**i, cap), 9 * cap // min(2**i, cap))
                for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(scripted(features), decoder(features))
