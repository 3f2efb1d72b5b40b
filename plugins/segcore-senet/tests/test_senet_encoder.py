"""The SE-Net encoders follow the segcore encoder contract and SMP's module layout.

Budget: one name (se_resnet50) goes through the whole conformance kit; the others share its
code (block layouts differ only in widths and where the stride sits) and get cheap settings.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import segcore
from segcore import testing
from segcore.errors import InvalidOptionError


def test_se_resnet50_follows_the_whole_contract() -> None:
    testing.check_encoder("se_resnet50", depths=(3, 4, 5), in_channels=(1, 3, 4))


@pytest.mark.parametrize("name, depths, in_channels, dilation", [
    # senet154's dilation: its parity with SMP at output stride 16 (tests/parity) and
    # test_senet154_dilates_its_3x3_projections; two more 113M builds would not fit the budget
    ("senet154", (5,), (1,), False),
    ("se_resnext50_32x4d", (4, 5), (4,), True),
    # same code as se_resnet50 / se_resnext50_32x4d with more blocks
    ("se_resnet101", (5,), (3,), False),
    ("se_resnet152", (5,), (3,), False),
    ("se_resnext101_32x4d", (5,), (3,), False),
])
def test_follows_the_contract_cheaply(name: str, depths, in_channels, dilation: bool) -> None:
    # torch.compile is checked on se_resnet50 above (same module classes), not per name.
    testing.check_encoder(name, depths=depths, in_channels=in_channels, size=32,
                          dilation=dilation, compile=False)


def test_module_names_are_smp_names() -> None:
    keys = set(segcore.get_encoder("se_resnet50", depth=1).state_dict())
    assert {"layer0.conv1.weight", "layer0.bn1.running_mean", "layer1.0.conv1.weight",
            "layer1.0.se_module.fc1.weight", "layer1.0.se_module.fc1.bias",
            "layer1.0.se_module.fc2.weight", "layer1.0.downsample.0.weight",
            "layer1.0.downsample.1.running_var", "layer2.3.bn3.bias",
            "layer4.2.conv3.weight"} <= keys
    assert "layer1.1.downsample.0.weight" not in keys
    assert not any(k.startswith(("last_linear", "avg_pool", "fc.")) for k in keys)
    stem = set(testing.meta_encoder("senet154").state_dict())
    assert {"layer0.conv2.weight", "layer0.bn3.weight", "layer0.conv3.weight"} <= stem


def test_block_layouts() -> None:
    # SE-ResNet: the stride sits on the 1x1 reduction, projections are 1x1.
    block = testing.meta_encoder("se_resnet50").layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert tuple(block.conv2.weight.shape) == (128, 128, 3, 3)
    assert block.downsample[0].kernel_size == (1, 1)
    assert tuple(block.se_module.fc1.weight.shape) == (32, 512, 1, 1)
    # SE-ResNeXt 32x4d: 32 groups of 4 channels per 64 planes, stride on the 3x3.
    block = testing.meta_encoder("se_resnext50_32x4d").layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)
    assert block.conv2.groups == 32 and tuple(block.conv2.weight.shape) == (256, 8, 3, 3)
    # SENet-154: deep 3x3 stem to 128 channels, 2p/4p widths, 64 groups, 3x3 projections.
    encoder = testing.meta_encoder("senet154")
    assert encoder.layer0.conv1.stride == (2, 2) and encoder.layer0.conv3.out_channels == 128
    block = encoder.layer2[0]
    assert tuple(block.conv1.weight.shape) == (256, 256, 1, 1)
    assert block.conv2.groups == 64 and tuple(block.conv2.weight.shape) == (512, 4, 3, 3)
    assert tuple(block.conv3.weight.shape) == (512, 512, 1, 1)
    assert block.downsample[0].kernel_size == (3, 3) and block.downsample[0].padding == (1, 1)
    assert encoder.layer1[0].downsample[0].kernel_size == (1, 1)
    assert [len(layer) for layer in (encoder.layer1, encoder.layer2, encoder.layer3,
                                     encoder.layer4)] == [3, 8, 36, 3]


def _bn(x: torch.Tensor, module: torch.nn.BatchNorm2d) -> torch.Tensor:
    return F.batch_norm(x, module.running_mean, module.running_var, module.weight, module.bias,
                        False, 0.0, module.eps)


def test_stem_and_first_block_match_a_hand_computation() -> None:
    torch.manual_seed(0)
    encoder = segcore.get_encoder("se_resnet50", depth=2).eval()
    with torch.no_grad():  # non-trivial normalisation statistics
        for module in encoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = encoder(x)
        stem = F.relu(_bn(F.conv2d(x, encoder.layer0.conv1.weight, stride=2, padding=3),
                          encoder.layer0.bn1))
        y = F.max_pool2d(stem, 3, 2, ceil_mode=True)
        block = encoder.layer1[0]
        out = F.relu(_bn(F.conv2d(y, block.conv1.weight), block.bn1))
        out = F.relu(_bn(F.conv2d(out, block.conv2.weight, padding=1), block.bn2))
        out = _bn(F.conv2d(out, block.conv3.weight), block.bn3)
        se = F.adaptive_avg_pool2d(out, 1)
        se = torch.sigmoid(F.conv2d(F.relu(F.conv2d(se, block.se_module.fc1.weight,
                                                    block.se_module.fc1.bias)),
                                    block.se_module.fc2.weight, block.se_module.fc2.bias))
        identity = _bn(F.conv2d(y, block.downsample[0].weight), block.downsample[1])
        first = F.relu(out * se + identity)
        rest = encoder.layer1[2](encoder.layer1[1](first))
    torch.testing.assert_close(features[1], stem)
    torch.testing.assert_close(features[2], rest)


def test_odd_sizes_follow_the_ceil_mode_pooling() -> None:
    # SMP's (Caffe's) max pooling has no padding: 33 at reduction 2 gives 16, not 17.
    encoder = segcore.get_encoder("se_resnext50_32x4d", depth=2).eval()
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 65, 64))
    assert tuple(features[1].shape[2:]) == (33, 32)
    assert tuple(features[2].shape[2:]) == (16, 16)


@pytest.mark.parametrize("output_stride, rates", [(16, (1, 2)), (8, (2, 4))])
def test_dilation_replaces_strides_of_the_last_stages(output_stride: int, rates) -> None:
    encoder = segcore.get_encoder("se_resnext50_32x4d", output_stride=output_stride).eval()
    assert encoder.output_stride == output_stride
    for layer, rate in zip((encoder.layer3, encoder.layer4), rates):
        stride = (2, 2) if rate == 1 else (1, 1)  # a stage at or below output_stride keeps it
        assert layer[0].conv2.dilation == (rate, rate) and layer[0].conv2.padding == (rate, rate)
        assert layer[0].conv2.stride == stride and layer[0].downsample[0].stride == stride
    assert encoder.layer2[0].conv2.stride == (2, 2)
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 64, 64))
    reductions = [min(2**level, output_stride) for level in range(6)]
    assert [f.shape[-1] for f in features] == [64 // r for r in reductions]


def test_senet154_dilates_its_3x3_projections() -> None:
    encoder = testing.meta_encoder("senet154")
    encoder.make_dilated(8)
    projection = encoder.layer3[0].downsample[0]
    assert projection.stride == (1, 1) and projection.dilation == (2, 2)
    assert projection.padding == (2, 2)
    assert encoder.layer4[0].downsample[0].padding == (4, 4)


def test_torchscript_gives_the_eager_features() -> None:
    testing.check_torchscript(segcore.get_encoder("se_resnext50_32x4d", depth=4),
                              torch.randn(1, 3, 64, 64))


def test_remap_state_dict_drops_the_classifier() -> None:
    encoder = testing.meta_encoder("se_resnet50", depth=1)
    state = {"layer0.conv1.weight": torch.zeros(1), "last_linear.weight": torch.zeros(1),
             "last_linear.bias": torch.zeros(1)}
    assert list(encoder.remap_state_dict(state)) == ["layer0.conv1.weight"]


def test_factory_refuses_bad_parameters() -> None:
    from segcore_senet.encoder import build_encoder

    with pytest.raises(InvalidOptionError, match="block must be one of"):
        build_encoder("x", block="resnet", layers=(1, 1, 1, 1))
    with pytest.raises(InvalidOptionError, match="layers must be 4 positive ints"):
        build_encoder("x", block="se_resnet", layers=(1, 1, 1))
    with pytest.raises(InvalidOptionError, match="groups must be a positive int"):
        build_encoder("x", block="se_resnext", layers=(1, 1, 1, 1), groups=0)
