"""The encoders follow the segcore contract, SMP's layout, and work in architectures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import segcore
from segcore import testing
from segcore.errors import EncoderCapabilityError
from segcore.registry import get_registry

NAMES = ("inceptionresnetv2", "inceptionv4", "xception")


def test_xception_follows_the_whole_contract() -> None:
    # The smallest of the three: every depth and input channel count, and torch.compile.
    testing.check_encoder("xception", depths=(3, 4, 5), in_channels=(1, 3, 4), size=32)


@pytest.mark.parametrize("name", ["inceptionresnetv2", "inceptionv4"])
def test_big_encoders_follow_the_contract(name: str) -> None:
    # Cheap settings (the code paths per depth are those of the forward test below); graph
    # capture takes ~30 s for these on a small CPU, so torch.compile is checked on xception.
    testing.check_encoder(name, depths=(5,), in_channels=(4,), size=32, compile=False)


@pytest.mark.parametrize("name", NAMES)
def test_every_depth_returns_the_first_maps_of_depth_5(name: str) -> None:
    torch.manual_seed(0)
    encoder = segcore.get_encoder(name, depth=5).eval()
    x = torch.randn(1, 3, 33, 47)  # odd sizes: every map is ceil(size / 2**k)
    with torch.no_grad():
        expected = encoder(x)
        # The factory passes depth to the constructor and nothing else depends on it: setting
        # it on one module tests each depth's forward path without building 4 more networks.
        for depth in (1, 2, 3, 4):
            encoder._depth = depth
            features = testing.check_encoder_features(encoder, x, depth)
            for level, feature in enumerate(features):
                torch.testing.assert_close(feature, expected[level])


def test_any_input_size_works_down_to_one_pixel() -> None:
    # SMP's padding (3x3 convolutions and max poolings padded by 1) removes the smallest input
    # size of the unpadded original networks: every stride-2 step gives ceil(size / 2).
    encoder = segcore.get_encoder("inceptionv4").eval()
    with torch.no_grad():
        for size in ((1, 1), (2, 3), (5, 7)):
            testing.check_encoder_features(encoder, torch.randn(1, 3, *size), 5)


def test_inceptionv4_reads_smps_feature_units() -> None:
    encoder = segcore.get_encoder("inceptionv4", depth=3).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        features = encoder(x)
        y = x
        for index in range(9):  # stem, Mixed_3a/4a/5a, three Inception_A (not the fourth)
            y = encoder.features[index](y)
    torch.testing.assert_close(features[3], y)
    assert type(encoder.features[9]).__name__ == "InceptionA"
    assert type(encoder.features[10]).__name__ == "ReductionA"


def test_module_names_are_smps() -> None:
    keys = set(segcore.get_encoder("inceptionv4", depth=1).state_dict())
    assert {"features.0.conv.weight", "features.0.bn.running_var", "features.3.conv.conv.weight",
            "features.4.branch1.3.bn.weight", "features.21.branch2_3b.conv.weight",
            "features.10.branch1.2.conv.weight"} <= keys
    keys = set(segcore.get_encoder("inceptionresnetv2", depth=1).state_dict())
    assert {"conv2d_1a.conv.weight", "mixed_5b.branch3.1.bn.bias", "repeat.9.conv2d.bias",
            "repeat_1.19.branch1.2.conv.weight", "repeat_2.8.conv2d.weight",
            "block8.conv2d.weight", "conv2d_7b.bn.running_mean"} <= keys
    keys = set(segcore.get_encoder("xception", depth=1).state_dict())
    assert {"conv1.weight", "bn2.running_var", "block1.rep.0.conv1.weight",
            "block1.rep.3.pointwise.weight", "block2.rep.1.conv1.weight", "block2.skip.weight",
            "block4.rep.7.pointwise.weight", "block12.rep.4.pointwise.weight",
            "conv4.pointwise.weight", "bn4.bias"} <= keys
    assert "block4.skip.weight" not in keys
    assert not any(k.startswith(("fc.", "last_linear.")) for k in keys)


def test_paddings_and_eps_are_smps() -> None:
    encoder = segcore.get_encoder("inceptionresnetv2", depth=1)
    assert encoder.conv2d_1a.conv.padding == (1, 1) and encoder.conv2d_1a.conv.stride == (2, 2)
    assert encoder.maxpool_3a.padding == 1 and encoder.mixed_6a.branch2.padding == 1
    assert encoder.repeat_1[0].branch1[1].conv.padding == (0, 3)
    assert encoder.conv2d_1a.bn.eps == 1e-3
    assert encoder.block8.scale == 1.0 and encoder.repeat[0].scale == 0.17
    xception = segcore.get_encoder("xception", depth=1)
    assert xception.conv1.padding == (1, 1) and xception.conv2.padding == (1, 1)
    assert xception.bn1.eps == 1e-5


def test_stem_matches_a_hand_computation() -> None:
    torch.manual_seed(0)
    encoder = segcore.get_encoder("xception", depth=1).eval()
    x = torch.randn(2, 3, 31, 40)

    def bn(t: torch.Tensor, m: torch.nn.BatchNorm2d) -> torch.Tensor:
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0, m.eps)

    with torch.no_grad():
        y = F.relu(bn(F.conv2d(x, encoder.conv1.weight, stride=2, padding=1), encoder.bn1))
        y = F.relu(bn(F.conv2d(y, encoder.conv2.weight, padding=1), encoder.bn2))
        torch.testing.assert_close(encoder(x)[1], y)


def test_inceptionv4_is_scriptable() -> None:
    testing.check_torchscript(segcore.get_encoder("inceptionv4", depth=3, in_channels=1),
                              torch.randn(1, 1, 32, 48))


def _have(architecture: str) -> bool:
    return architecture in get_registry().names("architectures")


@pytest.mark.parametrize("name", NAMES)
def test_unet_and_fpn(name: str) -> None:
    if not (_have("unet") and _have("fpn")):
        pytest.skip("segcore-unet and segcore-fpn are not installed")
    x = torch.randn(1, 3, 64, 64)
    for architecture in ("unet", "fpn"):
        model = segcore.build(architecture, encoder=name, classes=2).eval()
        with torch.no_grad():
            assert model(x).shape == (1, 2, 64, 64)


@pytest.mark.parametrize("name", NAMES)
def test_deeplabv3plus_only_without_dilation(name: str) -> None:
    if not _have("deeplabv3plus"):
        pytest.skip("segcore-deeplab is not installed")
    with pytest.raises(EncoderCapabilityError):
        segcore.build("deeplabv3plus", encoder=name)  # output stride 16 needs dilation
    # Depth 4 at output stride 16 reads the deepest map as it is: no dilation needed.
    model = segcore.build("deeplabv3plus", encoder=name, encoder_depth=4,
                          encoder_output_stride=16, classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)
