"""Parity of segcore-timm with SMP 0.6.0's TimmUniversalEncoder: state dicts load strictly into
ours and the features agree."""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_timm")

CASES = [
    # (name, in_channels, depth, output_stride)
    ("tu-resnet18", 3, 5, 32),
    ("tu-resnet18", 3, 5, 16),
    ("tu-resnet18", 1, 4, 32),
    ("tu-convnext_atto", 3, 5, 32),  # transformer-style: features start at reduction 4
    ("tu-convnext_atto", 4, 3, 32),
    ("tu-test_mambaout", 3, 5, 32),  # NHWC features
]


def _compare(reference: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor,
             skip_first: bool = False) -> None:
    with torch.no_grad():
        expected = reference(x)
        actual = ours(x)
    assert len(actual) == len(expected)
    start = 1 if skip_first else 0
    for level in range(start, len(expected)):
        a, b = actual[level], expected[level]
        assert a.shape == b.shape, f"feature {level}: {tuple(a.shape)} vs {tuple(b.shape)}"
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                   msg=lambda m, level=level: f"feature {level}: {m}")


@pytest.mark.parametrize("name, in_channels, depth, output_stride", CASES)
def test_smp_state_dict_loads_strictly_and_features_agree(
    name: str, in_channels: int, depth: int, output_stride: int
) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth,
                                         weights=None, output_stride=output_stride).eval()
    ours = segcore.get_encoder(name, in_channels=in_channels, depth=depth,
                               output_stride=output_stride).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride
    _compare(reference, ours, torch.randn(2, in_channels, 64, 64))


def test_vgg_style_differs_only_in_the_first_feature() -> None:
    # SMP returns timm's reduction-1 map first; segcore returns the input there (the contract).
    # The modules are the same, and every decoder ignores the first feature.
    reference = smp.encoders.get_encoder("tu-vgg11", depth=3, weights=None).eval()
    ours = segcore.get_encoder("tu-vgg11", depth=3).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels[1:]) == tuple(reference.out_channels[1:])
    _compare(reference, ours, torch.randn(2, 3, 64, 64), skip_first=True)


def test_smp_model_checkpoint_encoder_part_loads() -> None:
    model = smp.Unet("tu-resnet18", encoder_weights=None, classes=2)
    prefix = "encoder."
    encoder_state = {k[len(prefix):]: v for k, v in model.state_dict().items()
                     if k.startswith(prefix)}
    assert all(k.startswith("model.") for k in encoder_state)
    segcore.get_encoder("tu-resnet18").load_state_dict(encoder_state, strict=True)
