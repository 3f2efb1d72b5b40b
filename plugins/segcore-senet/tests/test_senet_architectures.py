"""Every SE-Net encoder builds into Unet, FPN and DeepLabV3+ (the encoder dilates to 16).

Architecture plugins are optional here (CI also runs these tests with only the core and this
plugin installed): each test skips when its architecture is not installed. Every name is
built on the meta device (structure, channels, dilation: no memory, no initialisation);
se_resnext50_32x4d (all three) and senet154 (Unet: its reduction-2 level has 128 channels)
also run a forward pass.
"""

from __future__ import annotations

import pytest
import torch

import segcore
from segcore.factory import get_encoder_spec

NAMES = ["senet154", "se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d",
         "se_resnext101_32x4d"]
ARCHITECTURES = {"unet": "segcore_unet", "fpn": "segcore_fpn", "deeplabv3plus": "segcore_deeplab"}


def _needs(architecture: str) -> None:
    pytest.importorskip(ARCHITECTURES[architecture])


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("name", NAMES)
def test_builds(name: str, architecture: str) -> None:
    _needs(architecture)
    with torch.device("meta"):
        model = segcore.build(architecture, encoder=name, classes=3)
    expected = get_encoder_spec(name).out_channels
    assert tuple(model.encoder.out_channels) == tuple(expected)
    assert model.encoder.output_stride == (16 if architecture == "deeplabv3plus" else 32)
    if architecture == "deeplabv3plus":  # layer4 is dilated, layer3 keeps its stride
        assert model.encoder.layer4[0].downsample[0].stride == (1, 1)
        assert model.encoder.layer3[0].downsample[0].stride == (2, 2)


@pytest.mark.parametrize("name, architecture", [
    ("se_resnext50_32x4d", "unet"),
    ("se_resnext50_32x4d", "fpn"),
    ("se_resnext50_32x4d", "deeplabv3plus"),
    ("senet154", "unet"),
])
def test_forward(name: str, architecture: str) -> None:
    _needs(architecture)
    torch.manual_seed(0)
    model = segcore.build(architecture, encoder=name, classes=3, in_channels=1).eval()
    with torch.no_grad():
        mask = model(torch.randn(2, 1, 64, 64))
    assert mask.shape == (2, 3, 64, 64)
    assert torch.isfinite(mask).all()
