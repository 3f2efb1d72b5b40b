"""UPerNet at run time: save/load, training, compile, export, lazy discovery, TorchScript.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_upernet_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_upernet import UPerNet

from segcore import testing
from segcore.errors import InputShapeError

TINY = testing.TINY_ENCODER
SMALL = {"decoder_channels": 16}


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_upernet(**kwargs) -> UPerNet:
    torch.manual_seed(0)
    return UPerNet(TINY, encoder_weights=None, **{**SMALL, **kwargs})


@pytest.mark.parametrize(
    "options",
    [
        {"decoder_use_norm": {"type": "layernorm", "eps": 1e-3}, "upsampling": 2,
         "encoder_depth": 4},
        {"decoder_use_norm": False, "decoder_channels": 24, "encoder_depth": 3,
         "in_channels": 1},
    ],
    ids=["layernorm-dict-depth-4", "no-norm-depth-3-gray"],
)
def test_save_pretrained_round_trip(tmp_path, options):
    model = tiny_upernet(classes=2, aux_params={"classes": 3, "dropout": 0.2}, **options)
    with torch.no_grad():  # trained-looking weights, so the comparison means something
        for name, tensor in model.decoder.state_dict().items():
            if tensor.is_floating_point() and not name.endswith("running_var"):
                tensor.add_(torch.randn_like(tensor) * 0.1)
    x = torch.randn(1, options.get("in_channels", 3), 64, 48)
    testing.check_save_load(model, x, tmp_path / "upernet")
    config = json.loads((tmp_path / "upernet" / "config.json").read_text())
    assert config["_architecture"] == "upernet"  # segcore's key; SMP reads "_model_class"
    for key in ("decoder_use_norm", "decoder_channels", "upsampling"):
        assert config[key] == model.options.as_dict()[key]


@pytest.mark.parametrize("use_norm", ["batchnorm", False, "layernorm"])
def test_gradients_reach_every_decoder_and_head_parameter(use_norm):
    model = tiny_upernet(decoder_use_norm=use_norm, aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name


def test_training_needs_two_images_with_batchnorm_as_in_smp():
    # the 1x1 pyramid pooling level is batch-normalised (SMP's layout): one image leaves a
    # single value per channel there; the core explains it
    model = tiny_upernet().train()
    with pytest.raises(InputShapeError, match=r"at least 2 images per batch"):
        model(torch.randn(1, 3, 64, 64))
    # with another normalisation a single image trains (psp.out_conv keeps its BatchNorm, but
    # it sees the whole 2x2 deepest map)
    model = tiny_upernet(decoder_use_norm="layernorm").train()
    model(torch.randn(1, 3, 64, 64)).mean().backward()


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_upernet(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_upernet(classes=3), torch.randn(1, 3, 64, 64))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_upernet(classes=2), torch.randn(2, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("upernet", "segcore_upernet")


def _layer_norm_2d(self, x: torch.Tensor) -> torch.Tensor:
    x = x.permute(0, 2, 3, 1)
    x = torch.nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                                       self.eps)
    return x.permute(0, 3, 1, 2)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("depth", [3, 5])
def test_decoder_compiles_with_torchscript(monkeypatch, depth):
    # segcore.nn.LayerNorm2d calls super().forward(), which TorchScript cannot compile; the
    # same math through F.layer_norm stands in for it until the core's layer does that
    from segcore_upernet.decoder import UPerNetDecoder

    from segcore.nn import LayerNorm2d

    monkeypatch.setattr(LayerNorm2d, "forward", _layer_norm_2d)
    channels = (3, 8, 16, 24, 32, 40)[: depth + 1]
    decoder = UPerNetDecoder(channels, depth, decoder_channels=8).eval()
    scripted = torch.jit.script(decoder)
    features = [torch.randn(1, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(scripted(features), decoder(features))
