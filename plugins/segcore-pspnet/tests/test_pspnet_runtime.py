"""PSPNet at run time: save/load, batches of one, compile, export, lazy discovery.

Gradients, predict, freeze_encoder and the plain save/load round trip are checked by the
conformance kit (``testing.check_architecture`` in test_pspnet_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_pspnet import PSPNet

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
    model = _trained_looking(tiny_pspnet(**options))
    x = torch.randn(1, options.get("in_channels", 3), 64, 48)
    loaded = testing.check_save_load(model, x, tmp_path / "pspnet")
    config = json.loads((tmp_path / "pspnet" / "config.json").read_text())
    assert config["_architecture"] == "pspnet"  # segcore's key; SMP reads "_model_class"
    assert config["encoder_depth"] == options.get("encoder_depth", 3)
    assert config["psp_out_channels"] == 16
    assert loaded.state_dict().keys() == model.state_dict().keys()


def test_training_with_a_batch_of_one():
    # the 1x1 pyramid level has no batch norm, so a single image trains (as in SMP)
    model = tiny_pspnet().train()
    model(torch.randn(1, 3, 64, 64)).mean().backward()


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_pspnet(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_pspnet(classes=3), torch.randn(1, 3, 64, 64))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(_trained_looking(tiny_pspnet(classes=2)),
                                torch.randn(2, 3, 64, 64))


def test_discovery_imports_no_model_code():
    testing.check_lazy_discovery("pspnet", "segcore_pspnet")
