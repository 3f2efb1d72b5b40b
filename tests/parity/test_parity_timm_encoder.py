"""Parity of segcore-timm with SMP 0.6.0's TimmUniversalEncoder: state dicts load strictly into
ours and the features agree."""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_timm")

import smp_pairs  # noqa: E402

CASES = [
    # (name, in_channels, depth, output_stride)
    ("tu-resnet18", 3, 5, 32),
    ("tu-resnet18", 3, 5, 16),
    ("tu-resnet18", 1, 4, 32),
    ("tu-convnext_atto", 3, 5, 32),  # transformer-style: features start at reduction 4
    ("tu-convnext_atto", 4, 3, 32),
    ("tu-test_mambaout", 3, 5, 32),  # NHWC features
]


@pytest.mark.parametrize("name, in_channels, depth, output_stride", CASES)
def test_smp_state_dict_loads_strictly_and_features_agree(
    name: str, in_channels: int, depth: int, output_stride: int
) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder(name, in_channels=in_channels, depth=depth,
                                                    output_stride=output_stride)
    smp_pairs.assert_features_agree_at_sizes(reference, ours, in_channels, name,
                                             sizes=[(64, 64)], batch=2)


def test_vgg_style_differs_only_in_the_first_feature() -> None:
    # SMP returns timm's reduction-1 map first; segcore returns the input there (the contract).
    # The modules are the same, and every decoder ignores the first feature.
    reference = smp.encoders.get_encoder("tu-vgg11", depth=3, weights=None).eval()
    ours = segcore.get_encoder("tu-vgg11", depth=3).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels[1:]) == tuple(reference.out_channels[1:])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    smp_pairs.assert_same_features(actual[1:], expected[1:], "tu-vgg11 (from 1)")


def test_smp_model_checkpoint_encoder_part_loads() -> None:
    model = smp.Unet("tu-resnet18", encoder_weights=None, classes=2)
    encoder_state = smp_pairs.smp_encoder_state(model)
    assert all(k.startswith("model.") for k in encoder_state)
    segcore.get_encoder("tu-resnet18").load_state_dict(encoder_state, strict=True)
