"""The DenseNet encoders follow the segcore encoder contract, torchvision's layout, SMP's taps."""

from __future__ import annotations

import attrs
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import segcore
from segcore import testing
from segcore.errors import InvalidOptionError
from segcore.factory import get_encoder_spec


def test_densenet121_follows_the_contract() -> None:
    testing.check_encoder("densenet121", depths=(1, 3, 5), in_channels=(1, 4), size=32,
                          compile=False)


def test_graph_capture_with_the_same_code() -> None:
    """``torch.compile(fullgraph=True)`` through the kit, on a DenseNet with 1 layer per block
    (the same modules as densenet121: capturing its 58 layers takes tens of seconds)."""
    spec = attrs.evolve(get_encoder_spec("densenet121"), name="densenet-tiny-test",
                        params={"num_init_features": 16, "growth_rate": 8,
                                "block_config": (1, 1, 1, 1)},
                        out_channels=(3, 16, 24, 20, 18, 17), weights={})
    with testing.specs_installed(encoders=[spec]):
        testing.check_encoder("densenet-tiny-test", depths=(5,), in_channels=(3,), size=32,
                              compile=True, compile_backend="eager")


@pytest.mark.parametrize("name", ["densenet169", "densenet201", "densenet161"])
def test_every_densenet_follows_the_contract(name: str) -> None:
    # Same code as densenet121 with other sizes: one depth, no second graph capture.
    testing.check_encoder(name, depths=(5,), in_channels=(3,), size=32, compile=False)


def test_module_names_are_torchvision_names() -> None:
    keys = set(segcore.get_encoder("densenet121").state_dict())
    assert {"features.conv0.weight", "features.norm0.running_mean",
            "features.denseblock1.denselayer1.norm1.weight",
            "features.denseblock1.denselayer6.conv2.weight",
            "features.denseblock4.denselayer16.norm2.num_batches_tracked",
            "features.transition3.norm.bias", "features.transition3.conv.weight",
            "features.norm5.running_var"} <= keys
    assert "features.transition4.conv.weight" not in keys
    assert not any(k.startswith("classifier") for k in keys)


def test_features_match_a_hand_computation() -> None:
    """Dense connectivity, transitions and SMP's taps, computed with functional calls."""
    from segcore_densenet import DenseNetEncoder

    torch.manual_seed(0)
    encoder = DenseNetEncoder(num_init_features=8, growth_rate=4, block_config=(2, 1, 1, 2),
                              bn_size=2)
    for module in encoder.modules():  # non-trivial statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(module.weight, 0.5, 1.5)
    encoder.eval()
    f = encoder.features

    def bn(t: torch.Tensor, m: nn.BatchNorm2d) -> torch.Tensor:
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0, m.eps)

    def block(t: torch.Tensor, layers: nn.Module) -> torch.Tensor:
        for layer in layers.values():
            y = F.conv2d(F.relu(bn(t, layer.norm1)), layer.conv1.weight)
            y = F.conv2d(F.relu(bn(y, layer.norm2)), layer.conv2.weight, padding=1)
            t = torch.cat([t, y], 1)
        return t

    def transition(t: torch.Tensor, m: nn.Module) -> torch.Tensor:
        return F.avg_pool2d(F.conv2d(t, m.conv.weight), 2)

    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        features = encoder(x)
        s2 = F.relu(bn(F.conv2d(x, f.conv0.weight, stride=2, padding=3), f.norm0))
        b1 = block(F.max_pool2d(s2, 3, 2, 1), f.denseblock1)
        s4 = F.relu(bn(b1, f.transition1.norm))
        s8 = F.relu(bn(block(transition(s4, f.transition1), f.denseblock2), f.transition2.norm))
        s16 = F.relu(bn(block(transition(s8, f.transition2), f.denseblock3), f.transition3.norm))
        s32 = bn(block(transition(s16, f.transition3), f.denseblock4), f.norm5)  # no ReLU
    # 8 + 2*4 = 16 -> 8 + 4 = 12 -> 6 + 4 = 10 -> 5 + 2*4 = 13 (transitions halve)
    assert encoder.out_channels == (3, 8, 16, 12, 10, 13)
    assert features[0] is x
    for actual, expected in zip(features[1:], (s2, s4, s8, s16, s32), strict=True):
        torch.testing.assert_close(actual, expected)


def test_invalid_block_config_is_refused() -> None:
    from segcore_densenet import DenseNetEncoder

    with pytest.raises(InvalidOptionError, match="4 positive ints"):
        DenseNetEncoder(block_config=(6, 12, 24))


def test_torchscript_gives_the_same_features() -> None:
    testing.check_torchscript(segcore.get_encoder("densenet121", depth=4),
                              torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("architecture", ["unet", "fpn"])
def test_architectures_build(architecture: str) -> None:
    pytest.importorskip(f"segcore_{architecture}")
    model = testing.check_encoder_in_architecture(architecture, "densenet121")
    if architecture == "unet":
        assert isinstance(model.decoder.center, nn.Identity)  # deepest feature is convolved


def test_deeplabv3plus_needs_a_shallow_encoder() -> None:
    pytest.importorskip("segcore_deeplab")
    # refused with its default (dilated) output stride; depth 4 works without dilation
    testing.check_undilated_encoder_in_deeplabv3plus("densenet121")
