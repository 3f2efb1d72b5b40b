"""Parity of segcore-mobilenet (mobilenet_v2) with SMP 0.6.0: SMP state dicts load strictly and
give the same features, dilated too; SMP Unet and DeepLabV3+ checkpoints give the same masks."""

from __future__ import annotations

import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_mobilenet")

NAME = "mobilenet_v2"
SIZES = [(64, 64), (64, 96)]


def _assert_same_features(actual, expected) -> None:
    assert len(actual) == len(expected)
    for level, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"feature {level}: {tuple(a.shape)} vs {tuple(b.shape)}"
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                   msg=lambda m, level=level: f"feature {level}: {m}")


@pytest.mark.parametrize("output_stride", [32, 16, 8])
@pytest.mark.parametrize("in_channels", [3, 1])
def test_smp_encoder_weights_load_and_features_agree(in_channels: int,
                                                     output_stride: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(NAME, in_channels=in_channels, weights=None,
                                         output_stride=output_stride).eval()
    ours = segcore.get_encoder(NAME, in_channels=in_channels,
                               output_stride=output_stride).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride == output_stride
    for size in SIZES:
        x = torch.randn(2, in_channels, *size)
        with torch.no_grad():
            _assert_same_features(ours(x), reference(x))


@pytest.mark.parametrize("depth", [1, 3, 4])
def test_shallow_encoders_agree(depth: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(NAME, depth=depth, weights=None).eval()
    ours = segcore.get_encoder(NAME, depth=depth).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        _assert_same_features(ours(x), reference(x))


def test_parameter_count_and_keys_equal_smp() -> None:
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(NAME, weights=None)
        ours = segcore.get_encoder(NAME)
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in reference.parameters())
    assert list(ours.state_dict()) == list(reference.state_dict())


def test_torchvision_classifier_file_loads() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    classifier = torchvision.models.mobilenet_v2(weights=None).eval()
    ours = segcore.get_encoder(NAME).eval()
    ours.load_state_dict(ours.remap_state_dict(classifier.state_dict()), strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[-1], classifier.features(x))


@pytest.mark.parametrize("architecture, smp_class, options", [
    ("unet", "Unet", {}),
    ("deeplabv3plus", "DeepLabV3Plus", {"encoder_output_stride": 16}),
    ("deeplabv3plus", "DeepLabV3Plus", {"encoder_output_stride": 8}),
])
def test_whole_smp_checkpoint_gives_the_same_masks(architecture: str, smp_class: str,
                                                   options: dict) -> None:
    pytest.importorskip("segcore_deeplab" if "deeplab" in architecture else "segcore_unet")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = getattr(smp, smp_class)(NAME, encoder_weights=None, classes=3,
                                            in_channels=1, **options).eval()
    model = segcore.build(architecture, encoder=NAME, encoder_weights=None, classes=3,
                          in_channels=1, **options).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-4)
