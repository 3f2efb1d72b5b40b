"""MAnet at run time: compile, export, channels_last, batches, training, save/load.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_manet_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_manet import MAnet

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
    testing.check_compile(tiny_manet(classes=2, aux_params={"classes": 3}),
                          torch.randn(2, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_manet(classes=3, decoder_interpolation="bilinear"),
                         torch.randn(1, 3, 64, 64))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_manet(classes=2), torch.randn(2, 3, 64, 64))


def test_batch_items_are_independent_in_eval_mode():
    # the attention softmax runs per image: another image in the batch changes nothing
    model = tiny_manet(classes=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]), rtol=1e-4, atol=1e-5)


def test_training_step_reaches_every_decoder_parameter():
    model = tiny_manet(classes=2, decoder_pab_channels=4).train()
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    for name, parameter in model.decoder.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_manet(encoder_depth=4, classes=2, in_channels=4, decoder_pab_channels=12,
                       decoder_interpolation="bilinear",
                       decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                       aux_params={"classes": 3, "dropout": 0.2})
    testing.check_save_load(model, torch.randn(1, 4, 64, 48), tmp_path / "manet")
    config = json.loads((tmp_path / "manet" / "config.json").read_text())
    assert config["_architecture"] == "manet"  # segcore's key; SMP reads "_model_class"
    assert config["decoder_use_norm"] == {"type": "layernorm", "eps": 1e-3}
    assert config["decoder_pab_channels"] == 12
    assert config["decoder_channels"] == list(SMALL[:4])


def test_from_config_rebuilds_the_same_architecture():
    model = tiny_manet(encoder_depth=3, decoder_pab_channels=5, activation="sigmoid")
    rebuilt = segcore.from_config(model.config)
    assert type(rebuilt) is MAnet
    assert rebuilt.options == model.options
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}
