"""Parity of segcore-efficientnet with SMP 0.6.0: SMP encoder state dicts load strictly, and
every feature map agrees (eval and seeded training mode, dilated, 1 and 3 input channels)."""

from __future__ import annotations

import functools

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_efficientnet")

import smp_pairs  # noqa: E402

NAMES = [f"efficientnet-b{i}" for i in range(8)]


@functools.cache
def _pair(name: str, in_channels: int, output_stride: int = 32):
    """SMP's encoder (random init) and ours with SMP's state dict loaded strictly (eval mode)."""
    return smp_pairs.smp_and_our_encoder(name, in_channels=in_channels,
                                         output_stride=output_stride)


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(name: str, in_channels: int) -> None:
    reference, ours = _pair(name, in_channels)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters())
    smp_pairs.assert_features_agree_at_sizes(reference, ours, in_channels, name, batch=2)


@pytest.mark.parametrize("name", NAMES)
def test_dilated_features_agree(name: str) -> None:
    reference, ours = _pair(name, 3, 16)
    assert ours.output_stride == reference.output_stride == 16
    x = torch.randn(1, 3, *smp_pairs.ENCODER_SIZES[-1])
    smp_pairs.assert_encoders_agree(reference, ours, x, f"{name} output_stride=16")


@pytest.mark.parametrize("in_channels", [3, 1])
def test_output_stride_8_agrees(in_channels: int) -> None:
    reference, ours = _pair("efficientnet-b0", in_channels, 8)
    x = torch.randn(1, in_channels, 64, 96)
    smp_pairs.assert_encoders_agree(reference, ours, x, "efficientnet-b0 output_stride=8")


@pytest.mark.parametrize("name", ["efficientnet-b0", "efficientnet-b2"])
def test_training_mode_with_drop_connect_agrees_under_the_same_seed(name: str) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, weights=None)
    ours = segcore.get_encoder(name)
    ours.load_state_dict(reference.state_dict(), strict=True)
    reference.train()
    ours.train()
    x = torch.randn(8, 3, 64, 64)
    torch.manual_seed(5)
    expected = reference(x)
    torch.manual_seed(5)
    actual = ours(x)
    smp_pairs.assert_same_features(actual, expected, f"{name} training")
    # Running statistics follow the same momentum (and the same batch statistics).
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, atol=1e-6, rtol=1e-5,
                                   msg=lambda m, key=key: f"{key}: {m}")
    # Drop connect did act: another seed gives other features.
    torch.manual_seed(6)
    assert not torch.allclose(ours(x)[-1], actual[-1])


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_shallower_depths_agree(depth: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder("efficientnet-b1", depth=depth)
    x = torch.randn(1, 3, 64, 64)
    smp_pairs.assert_encoders_agree(reference, ours, x, f"depth {depth}")


@pytest.mark.parametrize("name", ["efficientnet-b0", "efficientnet-b4"])
def test_smp_model_checkpoint_encoder_part_loads(name: str) -> None:
    smp_pairs.assert_smp_unet_encoder_part_agrees(name)
