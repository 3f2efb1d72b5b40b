"""Parity of segcore-efficientnet with SMP 0.6.0: SMP encoder state dicts load strictly, and
every feature map agrees (eval and seeded training mode, dilated, 1 and 3 input channels)."""

from __future__ import annotations

import functools

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_efficientnet")

NAMES = [f"efficientnet-b{i}" for i in range(8)]
SIZES = [(64, 64), (64, 96)]


@functools.cache
def _pair(name: str, in_channels: int, output_stride: int = 32):
    """SMP's encoder (random init) and ours with SMP's state dict loaded strictly (eval mode)."""
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=None,
                                         output_stride=output_stride).eval()
    ours = segcore.get_encoder(name, in_channels=in_channels,
                               output_stride=output_stride).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def _assert_same_features(actual, expected, label: str) -> None:
    assert len(actual) == len(expected)
    for level, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"{label} feature {level}: {tuple(a.shape)} vs {tuple(b.shape)}"
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                   msg=lambda m, level=level: f"{label} feature {level}: {m}")


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(name: str, in_channels: int) -> None:
    reference, ours = _pair(name, in_channels)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters())
    for height, width in SIZES:
        torch.manual_seed(1)
        x = torch.randn(2, in_channels, height, width)
        with torch.no_grad():
            _assert_same_features(ours(x), reference(x), f"{name} {height}x{width}")


@pytest.mark.parametrize("name", NAMES)
def test_dilated_features_agree(name: str) -> None:
    reference, ours = _pair(name, 3, 16)
    assert ours.output_stride == reference.output_stride == 16
    height, width = SIZES[-1]
    x = torch.randn(1, 3, height, width)
    with torch.no_grad():
        _assert_same_features(ours(x), reference(x), f"{name} output_stride=16")


@pytest.mark.parametrize("in_channels", [3, 1])
def test_output_stride_8_agrees(in_channels: int) -> None:
    reference, ours = _pair("efficientnet-b0", in_channels, 8)
    x = torch.randn(1, in_channels, 64, 96)
    with torch.no_grad():
        _assert_same_features(ours(x), reference(x), "efficientnet-b0 output_stride=8")


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
    _assert_same_features(actual, expected, f"{name} training")
    # Running statistics follow the same momentum (and the same batch statistics).
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, atol=1e-6, rtol=1e-5,
                                   msg=lambda m, key=key: f"{key}: {m}")
    # Drop connect did act: another seed gives other features.
    torch.manual_seed(6)
    assert not torch.allclose(ours(x)[-1], actual[-1])


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_shallower_depths_agree(depth: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder("efficientnet-b1", weights=None, depth=depth).eval()
    ours = segcore.get_encoder("efficientnet-b1", depth=depth).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _assert_same_features(ours(x), reference(x), f"depth {depth}")


@pytest.mark.parametrize("name", ["efficientnet-b0", "efficientnet-b4"])
def test_smp_model_checkpoint_encoder_part_loads(name: str) -> None:
    torch.manual_seed(0)
    model = smp.Unet(name, encoder_weights=None, classes=2).eval()
    prefix = "encoder."
    encoder_state = {k[len(prefix):]: v for k, v in model.state_dict().items()
                     if k.startswith(prefix)}
    ours = segcore.get_encoder(name).eval()
    ours.load_state_dict(encoder_state, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _assert_same_features(ours(x), model.encoder(x), f"Unet({name}).encoder")
