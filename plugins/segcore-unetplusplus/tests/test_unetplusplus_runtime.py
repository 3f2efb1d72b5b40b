"""UnetPlusPlus at run time: compile, export, channels_last, save/load, a training step.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_unetplusplus_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_unetplusplus import UnetPlusPlus
from torch import nn

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
                       aux_params={"classes": 3})
    testing.check_compile(model, torch.randn(1, 3, 64, 96))


def test_torch_export():
    model = tiny_model(classes=3, decoder_interpolation="bilinear", encoder_depth=4)
    testing.check_export(model, torch.randn(1, 3, 64, 48))


def test_channels_last_gives_the_same_output():
    testing.check_channels_last(tiny_model(classes=2), torch.randn(2, 3, 64, 64))


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_model(classes=2, decoder_attention_type="scse", decoder_interpolation="bilinear",
                       decoder_use_norm={"type": "layernorm", "eps": 1e-3},
                       aux_params={"classes": 3, "dropout": 0.2})
    testing.check_save_load(model, torch.randn(1, 3, 64, 96), tmp_path / "upp")
    config = json.loads((tmp_path / "upp" / "config.json").read_text())
    assert config["_architecture"] == "unetplusplus"  # segcore's key; SMP reads "_model_class"
    assert config["decoder_use_norm"] == {"type": "layernorm", "eps": 1e-3}
    assert config["decoder_channels"] == list(SMALL)


def test_round_trip_of_a_shallower_model_without_batchnorm(tmp_path):
    model = tiny_model(encoder_depth=3, decoder_use_batchnorm=False, in_channels=4)
    loaded = testing.check_save_load(model, torch.randn(1, 4, 64, 64), tmp_path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.decoder.modules())
    assert list(loaded.decoder.blocks) == ["x_0_0", "x_0_1", "x_1_1", "x_0_2"]


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
