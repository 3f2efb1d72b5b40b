"""The encoders follow the segcore contract, dilate, and build the architectures."""

from __future__ import annotations

import pytest
import torch

import segcore
from segcore import testing

#: The smallest name of each family (the families differ in how timm builds them).
SMALL_PER_FAMILY = [
    "timm-resnest14d",
    "timm-res2net50_48w_2s",
    "timm-regnety_002",
    "timm-gernet_s",
    "timm-mobilenetv3_large_075",
]


def test_one_small_name_passes_the_whole_conformance_kit() -> None:
    # depths 3-5, in_channels 1/3/4, output strides 8 and 16, gradients, torch.compile.
    testing.check_encoder("timm-regnetx_002")


@pytest.mark.parametrize("name", SMALL_PER_FAMILY)
def test_each_family_follows_the_contract(name: str) -> None:
    testing.check_encoder(name, depths=(3, 5), in_channels=(1, 3), size=32, batch=2,
                          compile=False)


def test_torchscript_and_torch_export() -> None:
    encoder = segcore.get_encoder("timm-mobilenetv3_small_minimal_100", in_channels=1)
    x = torch.rand(1, 1, 64, 96)
    testing.check_scripted_and_exported(encoder, x)


def test_non_square_input_and_odd_sizes() -> None:
    encoder = segcore.get_encoder("timm-gernet_s", in_channels=1, depth=5).eval()
    with torch.no_grad():
        testing.check_encoder_features(encoder, torch.randn(1, 1, 64, 96), depth=5)
        testing.check_encoder_features(encoder, torch.randn(1, 1, 33, 47), depth=5)


def test_extra_options_go_to_timm() -> None:
    encoder = segcore.get_encoder("timm-resnest14d", depth=3, drop_path_rate=0.1)
    assert any(type(m).__name__ == "DropPath" for m in encoder.modules())


@pytest.mark.parametrize("architecture", ["unet", "fpn", "deeplabv3plus"])
def test_architectures_build_and_run(architecture: str) -> None:
    if architecture not in segcore.list_architectures():
        pytest.skip(f"the {architecture} plugin is not installed")
    model = segcore.build(architecture, encoder="timm-regnetx_002", classes=2).eval()
    with torch.no_grad():
        mask = model(torch.rand(1, 3, 64, 64))
    assert mask.shape == (1, 2, 64, 64)
