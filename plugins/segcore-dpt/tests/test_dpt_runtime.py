"""DPT at run time: save/load, gradients, compile, export, input errors, lazy discovery.

predict, freeze_encoder and the plain save/load round trip are checked by the conformance
kit (``testing.check_architecture`` in test_dpt_model.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from segcore_dpt import DPT
from torch import nn

import segcore
from segcore import testing

VIT = "tu-vit_tiny_patch16_224"
VIT_OPTIONS = {"img_size": 64, "depth": 4, "embed_dim": 32, "num_heads": 2,
               "dynamic_img_size": True}
SMALL = {"decoder_intermediate_channels": (8, 16, 32, 32), "decoder_fusion_channels": 16}


@pytest.fixture(autouse=True)
def _tiny_encoder(segcore_isolation):
    with testing.tiny_encoder_installed():
        yield


def tiny_dpt(**kwargs) -> DPT:
    torch.manual_seed(0)
    return DPT(VIT, encoder_weights=None, **{**VIT_OPTIONS, **SMALL, **kwargs})


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_dpt(classes=2, encoder_depth=3, encoder_output_indices=[0, 2, 3],
                     decoder_readout="add", decoder_intermediate_channels=[4, 8, 12],
                     decoder_fusion_channels=8, drop_path_rate=0.1,
                     aux_params={"classes": 3, "dropout": 0.2})
    loaded = testing.check_save_load(model, torch.randn(1, 3, 64, 48), tmp_path / "dpt")
    config = json.loads((tmp_path / "dpt" / "config.json").read_text())
    assert config["_architecture"] == "dpt"  # segcore's key; SMP reads "_model_class"
    assert config["encoder_name"] == VIT
    assert config["encoder_output_indices"] == [0, 2, 3]
    assert config["decoder_intermediate_channels"] == [4, 8, 12]
    for key, value in {**VIT_OPTIONS, "drop_path_rate": 0.1}.items():  # top level, as SMP's
        assert config[key] == value, key
    assert loaded.config["encoder_params"] == {**VIT_OPTIONS, "drop_path_rate": 0.1}
    assert loaded.encoder.output_indices == (0, 2, 3)


def test_from_config_rebuilds_the_same_layout():
    model = tiny_dpt(decoder_readout="ignore", in_channels=1, classes=4)
    rebuilt = segcore.from_config(model.config)
    assert type(rebuilt) is DPT
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


def test_gradients_reach_decoder_heads_and_the_blocks_read():
    model = tiny_dpt(aux_params={"classes": 2}).train()
    mask, labels = model(torch.randn(2, 3, 64, 64))
    (mask.mean() + labels.mean()).backward()
    for name, parameter in model.named_parameters():
        # as in SMP the whole timm model is kept (its checkpoints have every key), but the
        # final norm and the classifier of the ViT are not used
        if name.startswith(("encoder.model.norm.", "encoder.model.head.", "encoder.model.fc_norm")):
            continue
        assert parameter.grad is not None, name


def test_batch_of_one_trains():
    model = tiny_dpt().train()
    model(torch.randn(1, 3, 64, 64)).mean().backward()


def test_compile_fullgraph_with_aux_head():
    testing.check_compile(tiny_dpt(aux_params={"classes": 3}), torch.randn(1, 3, 64, 96))


def test_torch_export():
    testing.check_export(tiny_dpt(classes=3), torch.randn(1, 3, 64, 64))


def test_input_type_errors_come_from_the_core():
    model = tiny_dpt().eval()
    with pytest.raises(segcore.errors.InputTypeError, match=r"x\.float\(\)"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.float64))
    with pytest.raises(segcore.errors.InputShapeError, match=r"x\.unsqueeze\(0\)"):
        model(torch.zeros(3, 64, 64))


def test_model_is_a_segmentation_model():
    model = tiny_dpt()
    assert isinstance(model, segcore.SegmentationModel)
    assert model.name == f"dpt-{VIT}"
    assert isinstance(model.segmentation_head.activation.activation, nn.Identity)


def test_discovery_imports_no_model_code_and_no_timm():
    testing.check_lazy_discovery("dpt", "segcore_dpt")  # not segcore_dpt.encoder (timm)
