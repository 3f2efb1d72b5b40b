"""Parity of segcore-skresnet with SMP 0.6.0: SMP state dicts load strictly into the segcore
encoders and give the same features (random init, eval mode, float32)."""

from __future__ import annotations

import pytest

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_skresnet")

pytestmark = pytest.mark.filterwarnings("ignore:`timm-` encoders are deprecated")

import smp_pairs  # noqa: E402

NAMES = ["timm-skresnet18", "timm-skresnet34", "timm-skresnext50_32x4d"]


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_and_out_channels_equal_smps(name: str) -> None:
    smp_pairs.assert_parameters_equal_smps(name, same_shapes=True)


@pytest.mark.parametrize("in_channels, output_stride", [(3, 32), (1, 32), (3, 16), (1, 8)])
@pytest.mark.parametrize("name", NAMES)
def test_smp_state_dict_loads_and_features_agree(name: str, in_channels: int,
                                                 output_stride: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder(name, in_channels=in_channels,
                                                    output_stride=output_stride)
    smp_pairs.assert_features_agree_at_sizes(reference, ours, in_channels, name)


@pytest.mark.parametrize("name", ["timm-skresnet18", "timm-skresnext50_32x4d"])
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    model, ours = smp_pairs.smp_unet_and_its_encoder(name)
    smp_pairs.assert_features_agree_at_sizes(model.encoder, ours, 3, name)
