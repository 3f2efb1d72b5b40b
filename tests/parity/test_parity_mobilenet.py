"""Parity of segcore-mobilenet (mobilenet_v2) with SMP 0.6.0: SMP state dicts load strictly and
give the same features, dilated too; SMP Unet and DeepLabV3+ checkpoints give the same masks."""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_mobilenet")

import smp_pairs  # noqa: E402

NAME = "mobilenet_v2"


@pytest.mark.parametrize("output_stride", [32, 16, 8])
@pytest.mark.parametrize("in_channels", [3, 1])
def test_smp_encoder_weights_load_and_features_agree(in_channels: int,
                                                     output_stride: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder(NAME, in_channels=in_channels,
                                                    output_stride=output_stride)
    assert ours.output_stride == output_stride
    smp_pairs.assert_features_agree_at_sizes(reference, ours, in_channels, NAME, batch=2)


@pytest.mark.parametrize("depth", [1, 3, 4])
def test_shallow_encoders_agree(depth: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder(NAME, depth=depth)
    x = torch.randn(1, 3, 64, 96)
    smp_pairs.assert_encoders_agree(reference, ours, x, f"{NAME} depth {depth}")


def test_parameter_count_and_keys_equal_smp() -> None:
    smp_pairs.assert_parameters_equal_smps(NAME, same_keys=True)


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
    smp_pairs.assert_whole_smp_checkpoint_gives_the_same_masks(
        architecture, smp_class, NAME, torch.randn(2, 1, 64, 96), **options)
