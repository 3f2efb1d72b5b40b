"""The ResNet/ResNeXt encoders follow the segcore encoder contract and torchvision's layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import segcore
from segcore import testing


def test_resnet18_follows_the_contract() -> None:
    testing.check_encoder("resnet18", depths=(3, 4, 5), in_channels=(1, 3, 4),
                          compile_backend="eager")


def test_resnext50_follows_the_contract() -> None:
    # Fewer combinations and smaller inputs than resnet18 (which shares the code): grouped
    # convolutions are slow on small CPUs.
    testing.check_encoder("resnext50_32x4d", depths=(5,), in_channels=(4,), size=32,
                          compile_backend="eager")


def test_module_names_are_torchvision_names() -> None:
    keys = set(segcore.get_encoder("resnet18").state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
            "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
            "layer4.1.conv2.weight"} <= keys
    assert "layer1.0.downsample.0.weight" not in keys  # 64 -> 64, stride 1: no projection
    assert not any(k.startswith(("fc.", "avgpool")) for k in keys)
    keys = set(segcore.get_encoder("resnet50").state_dict())
    assert {"layer1.0.conv3.weight", "layer1.0.bn3.weight", "layer1.0.downsample.0.weight",
            "layer4.2.conv3.weight"} <= keys


def test_bottleneck_strides_on_the_3x3_conv_and_resnext_widths() -> None:
    encoder = segcore.get_encoder("resnext50_32x4d")
    first = encoder.layer2[0]
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    # 32 groups x 4 channels in layer1, doubling per stage (torchvision's resnext50_32x4d).
    assert encoder.layer1[0].conv2.groups == 32
    assert tuple(encoder.layer1[0].conv2.weight.shape) == (128, 4, 3, 3)
    assert tuple(encoder.layer4[0].conv2.weight.shape) == (1024, 32, 3, 3)


def test_stem_and_first_block_match_a_hand_computation() -> None:
    torch.manual_seed(0)
    encoder = segcore.get_encoder("resnet18", depth=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = encoder(x)

        def bn(t, m):
            return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0, m.eps)

        stem = F.relu(bn(F.conv2d(x, encoder.conv1.weight, stride=2, padding=3), encoder.bn1))
        y = F.max_pool2d(stem, 3, 2, 1)
        for block in encoder.layer1:
            out = F.relu(bn(F.conv2d(y, block.conv1.weight, padding=1), block.bn1))
            out = bn(F.conv2d(out, block.conv2.weight, padding=1), block.bn2)
            y = F.relu(out + y)
    torch.testing.assert_close(features[1], stem)
    torch.testing.assert_close(features[2], y)


@pytest.mark.parametrize("output_stride, dilations", [(16, (1, 2)), (8, (2, 4))])
def test_dilation_replaces_strides_of_the_last_stages(output_stride: int, dilations) -> None:
    encoder = segcore.get_encoder("resnet34", output_stride=output_stride)
    assert encoder.output_stride == output_stride
    for layer, rate in zip((encoder.layer3, encoder.layer4), dilations):
        assert layer[0].conv1.dilation == (rate, rate)
        assert layer[0].conv1.stride == (1, 1) or rate == 1
    features = encoder(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 64 // output_stride
