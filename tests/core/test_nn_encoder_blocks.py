"""The encoder building blocks of ``segcore.nn``: ``ResNetStagesEncoder``,
``SequentialTapsEncoder``, ``initialize_like_torchvision``, ``check_resnet_layout`` (and
``segcore.options.check_reserved_timm_options``, which the timm-built encoders share)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from segcore.errors import InvalidOptionError
from segcore.nn import (
    ResNetStagesEncoder,
    SequentialTapsEncoder,
    check_resnet_layout,
    initialize_like_torchvision,
)
from segcore.options import check_reserved_timm_options


def _halving(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 convolution that halves the size."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)


class _TinyResNet(ResNetStagesEncoder):
    """A stem, a pool and four one-convolution layers (channels 3, 4, 5, 6, 7, 8)."""

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        self.conv1 = _halving(3, 4)
        self.pool = nn.MaxPool2d(2)
        self.layer1 = nn.Conv2d(4, 5, 3, padding=1)
        self.layer2 = _halving(5, 6)
        self.layer3 = _halving(6, 7)
        self.layer4 = _halving(7, 8)
        self._out_channels = (3, 4, 5, 6, 7, 8)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv1(x))

    def forward_pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


class _TinyTaps(SequentialTapsEncoder):
    """Five halving convolutions, each followed by a ReLU; the features are the ReLUs'."""

    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip((3, 4, 5, 6, 7), (4, 5, 6, 7, 8)):
            layers += [_halving(in_channels, out_channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.set_feature_indexes([1, 3, 5, 7, 9])
        self._out_channels = (3, 4, 5, 6, 7, 8)


@pytest.mark.parametrize("encoder_class", [_TinyResNet, _TinyTaps])
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_forward_gives_depth_plus_one_maps_halving_each_time(encoder_class, depth) -> None:
    encoder = encoder_class(depth=depth).eval()
    x = torch.randn(2, 3, 64, 64)
    features = encoder(x)
    assert [f.shape for f in features] == [
        (2, channels, 64 >> level, 64 >> level)
        for level, channels in enumerate(encoder._out_channels[: depth + 1])
    ]
    assert features[0] is x
    scripted = torch.jit.script(encoder)
    for actual, expected in zip(scripted(x), features):
        torch.testing.assert_close(actual, expected)


def test_resnet_stages_run_only_up_to_the_depth_and_dilate_layer3_and_layer4() -> None:
    encoder = _TinyResNet(depth=2)
    encoder.layer2.register_forward_hook(lambda *args: pytest.fail("layer2 ran at depth 2"))
    encoder(torch.randn(1, 3, 32, 32))
    dilated = _TinyResNet()
    assert dilated.get_stages()[16] == [dilated.layer3]
    assert dilated.get_stages()[32] == [dilated.layer4]
    dilated.make_dilated(8)
    assert dilated(torch.randn(1, 3, 64, 64))[-1].shape == (1, 8, 8, 8)


def test_sequential_taps_run_only_up_to_the_last_tap() -> None:
    encoder = _TinyTaps(depth=2)
    assert encoder._output_indexes == [1, 3] and encoder._last_index == 3
    encoder.features[4].register_forward_hook(lambda *args: pytest.fail("child 4 ran"))
    assert len(encoder(torch.randn(1, 3, 32, 32))) == 3


def test_initialize_like_torchvision() -> None:
    module = nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.Linear(4, 4))
    nn.init.constant_(module[0].bias, 1.0)
    nn.init.constant_(module[1].weight, 3.0)
    nn.init.constant_(module[1].bias, 2.0)
    linear = module[2].weight.clone()
    torch.manual_seed(0)
    initialize_like_torchvision(module)
    expected_std = math.sqrt(2.0 / (64 * 3 * 3))  # He normal, fan_out
    assert module[0].weight.std().item() == pytest.approx(expected_std, rel=0.05)
    assert torch.equal(module[0].bias, torch.zeros(64))
    assert torch.equal(module[1].weight, torch.ones(64))
    assert torch.equal(module[1].bias, torch.zeros(64))
    assert torch.equal(module[2].weight, linear)  # other modules are left alone


def test_resnet_stages_remap_drops_only_the_classifier_keys() -> None:
    encoder = _TinyResNet()
    state = encoder.state_dict()
    remapped = encoder.remap_state_dict({**state, "fc.weight": torch.zeros(1),
                                         "fc.bias": torch.zeros(1)})
    assert remapped.keys() == state.keys()


def test_check_resnet_layout_returns_the_layers_as_a_tuple() -> None:
    assert check_resnet_layout("basic", {"basic": 1, "bottleneck": 2}, [2, 2, 2, 2]) == (
        2, 2, 2, 2)
    assert check_resnet_layout("se_resnet", ("senet", "se_resnet"), (3, 4, 6, 3)) == (3, 4, 6, 3)


@pytest.mark.parametrize("block, layers, message", [
    ("wide", (2, 2, 2, 2), "block must be one of ('basic', 'bottleneck'), got 'wide'"),
    ("basic", (2, 2, 2), "layers must be 4 positive ints (blocks per stage), got (2, 2, 2)"),
    ("basic", (2, 0, 2, 2), "got (2, 0, 2, 2)"),
    ("basic", (2, 2.0, 2, 2), "got (2, 2.0, 2, 2)"),
])
def test_check_resnet_layout_refuses_unknown_blocks_and_bad_layers(block, layers, message) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        check_resnet_layout(block, ("basic", "bottleneck"), layers)
    assert message in str(caught.value)


def test_check_reserved_timm_options_names_each_collision_and_its_advice() -> None:
    reserved = {"in_chans": "use in_channels instead", "pretrained": "use weights instead"}
    check_reserved_timm_options({"drop_rate": 0.1}, reserved, "tu- encoder")  # no collision
    with pytest.raises(InvalidOptionError) as caught:
        check_reserved_timm_options({"pretrained": True, "drop_rate": 0.1, "in_chans": 1},
                                    reserved, "tu- encoder")
    assert str(caught.value) == (
        "option(s) 'pretrained', 'in_chans' cannot be passed to timm: the tu- encoder sets them "
        "itself ('pretrained': use weights instead; 'in_chans': use in_channels instead)."
    )
