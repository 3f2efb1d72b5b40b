"""Parity of segcore-vgg with SMP 0.6.0: SMP state dicts load strictly and give the same features.

SMP's first VGG feature is the full-resolution 64-channel ReLU output (``out_channels[0] ==
64``), which no decoder reads; segcore's contract puts the input there. Features 1 to 5 (and
``out_channels[1:]``) are compared exactly; whole Unet and FPN checkpoints give the same masks.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_vgg")

import smp_pairs  # noqa: E402

NAMES = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(smp_encoders, name: str,
                                                     in_channels: int) -> None:
    reference, ours = smp_pairs.smp_encoder_and_ours(smp_encoders, name, in_channels)
    assert tuple(ours.out_channels[1:]) == tuple(reference.out_channels[1:])
    assert ours.out_channels[0] == in_channels and reference.out_channels[0] == 64
    assert ours.output_stride == reference.output_stride == 32
    torch.manual_seed(1)
    for size in smp_pairs.ENCODER_SIZES:
        x = torch.randn(1, in_channels, *size)
        with torch.no_grad():
            expected = reference(x)
            actual = ours(x)
        assert len(actual) == len(expected) == 6
        assert actual[0] is x and expected[0].shape == (1, 64, *size)
        smp_pairs.assert_same_features(actual[1:], expected[1:], f"{name} {size} (from 1)")


@pytest.mark.parametrize("depth", [2])
def test_shallow_encoders_agree(depth: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder("vgg13_bn", depth=depth)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    assert len(actual) == len(expected) == depth + 1
    smp_pairs.assert_same_features(actual[1:], expected[1:], "vgg13_bn (from 1)")


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_keys_and_dilation_refusal_like_smp(smp_encoders, name: str) -> None:
    smp_pairs.assert_undilatable_encoder_like_smps(smp_encoders, name)


@pytest.mark.parametrize("name", ["vgg16", "vgg19_bn"])  # and vgg11(_bn) below
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    smp_pairs.smp_unet_and_its_encoder(name, decoder_channels=(16,) * 5)


@pytest.mark.parametrize("architecture, smp_class", [("unet", "Unet"), ("fpn", "FPN")])
@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn"])
def test_whole_smp_checkpoint_gives_the_same_masks(name: str, architecture: str,
                                                   smp_class: str) -> None:
    pytest.importorskip(f"segcore_{architecture}")
    smp_pairs.assert_whole_smp_checkpoint_gives_the_same_masks(
        architecture, smp_class, name, torch.randn(2, 1, 64, 96))
