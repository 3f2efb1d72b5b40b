"""The timm EfficientNet encoders follow the segcore encoder contract, dilate as SMP does,
and work in the architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import segcore
from segcore import testing
from segcore.factory import get_encoder_spec

SMALL = ["timm-efficientnet-b0", "timm-efficientnet-lite0"]
# The SMP spellings of Lite share the canonical specs' factory and parameters (test_specs):
# one of them is enough here.
OTHERS = [*(f"timm-efficientnet-b{i}" for i in range(1, 9)),
          *(f"timm-efficientnet-lite{i}" for i in range(1, 5)), "timm-tf_efficientnet_lite0"]


def test_b0_follows_the_whole_contract() -> None:
    testing.check_encoder("timm-efficientnet-b0", depths=(1, 3, 4, 5), in_channels=(1, 3, 4),
                          dilation=True, compile_backend="eager")


def test_lite0_follows_the_contract() -> None:
    # Lite's own code path (ReLU6, no squeeze-excite), graph capture included.
    testing.check_encoder("timm-efficientnet-lite0", depths=(3, 5), in_channels=(1, 4),
                          size=32, dilation=True, compile_backend="eager")


@pytest.mark.parametrize("name", OTHERS)
def test_other_models_follow_the_contract_cheaply(name: str) -> None:
    # The code of B0/Lite0 at other widths and depths: one depth, one channel count, no
    # dilation (the same stages as B0; tests/parity checks it against SMP for every name) and
    # no graph capture (Dynamo tracing of the deep ones takes tens of seconds on a small CPU).
    testing.check_encoder(name, depths=(5,), in_channels=(1,), size=32, dilation=False,
                          compile=False)


def test_l2_follows_the_contract_on_the_meta_device() -> None:
    # 475M parameters: shapes, channels and strides are checked without memory or compute.
    with torch.device("meta"):
        for in_channels, depth, output_stride in ((1, 4, 32), (4, 5, 16)):
            encoder = segcore.get_encoder("timm-efficientnet-l2", in_channels=in_channels,
                                          depth=depth, output_stride=output_stride)
            assert encoder.in_channels == in_channels
            testing.check_encoder_features(encoder, torch.empty(2, in_channels, 64, 96), depth,
                                           output_stride)
    assert encoder.out_channels == (4, *get_encoder_spec("timm-efficientnet-l2").out_channels[1:])


def test_module_names_are_timms() -> None:
    encoder = segcore.get_encoder("timm-efficientnet-b0")
    keys = set(encoder.state_dict())
    assert {"conv_stem.weight", "bn1.weight", "bn1.running_var", "blocks.0.0.conv_dw.weight",
            "blocks.0.0.se.conv_reduce.weight", "blocks.1.0.conv_pw.weight",
            "blocks.6.0.conv_pwl.weight", "conv_head.weight", "bn2.running_mean"} <= keys
    assert [len(stage) for stage in encoder.blocks] == [1, 2, 2, 3, 3, 4, 1]
    lite = segcore.get_encoder("timm-efficientnet-lite4")
    assert not any(".se." in k for k in lite.state_dict())
    assert isinstance(lite.bn1.act, nn.ReLU6) and isinstance(encoder.bn1.act, nn.SiLU)
    # Lite keeps the first and last stage at one block and fixes stem and head widths.
    assert len(lite.blocks[0]) == 1 and len(lite.blocks[6]) == 1
    assert lite.conv_stem.out_channels == 32 and lite.conv_head.out_channels == 1280


def test_stem_feature_is_conv_bn_swish() -> None:
    torch.manual_seed(0)
    encoder = segcore.get_encoder("timm-efficientnet-b0", depth=1).eval()
    x = torch.randn(2, 3, 33, 47)
    bn = encoder.bn1
    with torch.no_grad():
        stem = nn.functional.conv2d(x, encoder.conv_stem.weight, stride=2, padding=1)
        stem = nn.functional.batch_norm(stem, bn.running_mean, bn.running_var, bn.weight,
                                        bn.bias, False, 0.0, bn.eps)
        expected = stem * torch.sigmoid(stem)
        features = encoder(x)
    assert len(features) == 2 and features[0] is x
    torch.testing.assert_close(features[1], expected)


@pytest.mark.parametrize("output_stride, rates", [(16, (1, 2)), (8, (2, 4))])
def test_dilation_of_the_last_stages(output_stride: int, rates: tuple[int, int]) -> None:
    encoder = segcore.get_encoder("timm-efficientnet-b0", output_stride=output_stride)
    assert encoder.output_stride == output_stride
    stage16, stage32 = encoder.blocks[3][0].conv_dw, encoder.blocks[5][0].conv_dw
    for conv, rate in ((stage16, rates[0]), (stage32, rates[1])):
        assert conv.dilation == (rate, rate)
        assert conv.stride == ((1, 1) if rate > 1 else (2, 2))
        assert conv.padding == ((conv.kernel_size[0] // 2) * rate,) * 2
    assert encoder.blocks[2][0].conv_dw.stride == (2, 2)  # 1/8 is never dilated


def test_torchscript_and_export_give_the_same_features() -> None:
    encoder = segcore.get_encoder("timm-efficientnet-b0", in_channels=1, output_stride=16)
    x = torch.randn(1, 1, 64, 96)
    testing.check_scripted_and_exported(encoder, x)


@pytest.mark.parametrize("architecture, options", testing.ENCODER_TEST_ARCHITECTURES)
@pytest.mark.parametrize("name", SMALL)
def test_builds_in_architectures(name: str, architecture: str, options: dict) -> None:
    if architecture not in segcore.list_architectures():
        pytest.skip(f"the {architecture} plugin is not installed")
    testing.check_encoder_in_architecture(architecture, name, in_channels=1, size=(64, 96),
                                          **options)
