"""PAN at run time: save/load, gradients, compile, export, lazy discovery, TorchScript.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_pan_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_pan import PAN

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
    loaded = testing.check_save_load(model, torch.randn(1, 3, SIZE, 144), tmp_path / "pan")
    config = json.loads((tmp_path / "pan" / "config.json").read_text())
    assert config["_architecture"] == "pan"  # segcore's key; SMP reads "_model_class"
    assert config["encoder_output_stride"] == 32
    assert config["decoder_interpolation"] == "bicubic"
    assert config["encoder_depth"] == 4
    assert [n for n, _ in loaded.decoder.named_children()] == ["fpa", "gau2", "gau1"]


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
    testing.check_compile(tiny_pan(aux_params={"classes": 3}, decoder_interpolation="nearest"),
                          torch.randn(1, 3, SIZE, 160))


def test_torch_export():
    testing.check_export(tiny_pan(classes=3, encoder_depth=4), torch.randn(1, 3, SIZE, SIZE))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("pan", "segcore_pan")


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
