"""The SK-ResNe(X)t encoders follow the segcore encoder contract, dilate as SMP does, and
work in the architectures."""

from __future__ import annotations

import pytest
import torch
from timm.models.sknet import SelectiveKernelBasic, SelectiveKernelBottleneck

import segcore
from segcore import testing


def test_skresnet18_follows_the_whole_contract() -> None:
    testing.check_encoder("timm-skresnet18", depths=(1, 2, 3, 4, 5), in_channels=(1, 3, 4),
                          dilation=True, compile_backend="eager")


@pytest.mark.parametrize("name", ["timm-skresnet34", "timm-skresnext50_32x4d"])
def test_larger_models_follow_the_contract_cheaply(name: str) -> None:
    # Grouped and selective-kernel convolutions are slow on small CPUs: fewer combinations.
    testing.check_encoder(name, depths=(5,), in_channels=(4,), size=32, dilation=True,
                          compile=False)


def test_module_names_and_blocks_are_timms() -> None:
    encoder = segcore.get_encoder("timm-skresnet18")
    keys = set(encoder.state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.paths.0.conv.weight",
            "layer1.0.conv1.attn.fc_reduce.weight", "layer1.0.conv2.conv.weight",
            "layer2.0.downsample.0.weight", "layer4.1.conv2.bn.weight"} <= keys
    assert isinstance(encoder.layer1[0], SelectiveKernelBasic)
    assert [len(layer) for layer in (encoder.layer1, encoder.layer2, encoder.layer3,
                                     encoder.layer4)] == [2, 2, 2, 2]
    # SMP's settings: attention width 1/8 of the channels (64 -> 8), split inputs.
    assert encoder.layer1[0].conv1.attn.fc_reduce.out_channels == 8
    assert encoder.layer1[0].conv1.split_input
    resnext = segcore.get_encoder("timm-skresnext50_32x4d")
    assert isinstance(resnext.layer1[0], SelectiveKernelBottleneck)
    assert resnext.layer1[0].conv2.paths[0].conv.groups == 32


@pytest.mark.parametrize("output_stride, rates", [(16, (1, 2)), (8, (2, 4))])
def test_dilation_of_the_last_stages(output_stride: int, rates: tuple[int, int]) -> None:
    encoder = segcore.get_encoder("timm-skresnet18", output_stride=output_stride)
    assert encoder.output_stride == output_stride
    for layer, rate in ((encoder.layer3, rates[0]), (encoder.layer4, rates[1])):
        conv = layer[0].conv1.paths[0].conv
        assert conv.dilation == (rate, rate)
        assert conv.stride == ((1, 1) if rate > 1 else (2, 2))
    assert encoder.layer2[0].conv1.paths[0].conv.stride == (2, 2)
    # SMP's dilation sets every convolution of a stage to the stage's rate, the second
    # (originally dilated) selective-kernel path included.
    assert layer[-1].conv1.paths[1].conv.dilation == (rates[1], rates[1])
    with torch.no_grad():
        features = encoder.eval()(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 64 // output_stride


def test_torchscript_and_export_give_the_same_features() -> None:
    encoder = segcore.get_encoder("timm-skresnet18", in_channels=1, output_stride=16)
    x = torch.randn(1, 1, 64, 96)
    testing.check_scripted_and_exported(encoder, x)


@pytest.mark.parametrize("architecture, options", testing.ENCODER_TEST_ARCHITECTURES)
def test_builds_in_architectures(architecture: str, options: dict) -> None:
    if architecture not in segcore.list_architectures():
        pytest.skip(f"the {architecture} plugin is not installed")
    testing.check_encoder_in_architecture(architecture, "timm-skresnet18", in_channels=1,
                                          size=(64, 96), **options)
