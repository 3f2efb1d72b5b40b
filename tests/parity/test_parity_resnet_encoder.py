"""Parity of segcore-resnet with SMP 0.6.0: SMP encoder state dicts load strictly, same features."""

from __future__ import annotations

import pytest

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_resnet")

import smp_pairs  # noqa: E402

NAMES = ["resnet18", "resnet34", "resnext50_32x4d"]
CASES = [
    # (in_channels, output_stride)
    (3, 32),
    (3, 16),
    (1, 32),
]


@pytest.mark.parametrize("in_channels, output_stride", CASES)
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(name: str, in_channels: int,
                                                     output_stride: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder(name, in_channels=in_channels,
                                                    output_stride=output_stride)
    smp_pairs.assert_features_agree_at_sizes(reference, ours, in_channels, name,
                                             sizes=[(64, 64)])


@pytest.mark.parametrize("name", ["resnet18"])
def test_smp_model_checkpoint_encoder_part_loads(name: str) -> None:
    smp_pairs.smp_unet_and_its_encoder(name)
