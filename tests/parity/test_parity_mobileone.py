"""Parity of segcore-mobileone with SMP 0.6.0: SMP encoder state dicts load strictly and give
the same features, train-time (unfused) and re-parameterised (fused by SMP and by us).

Every MobileOne name, input channels 3 and 1, a square and a non-square input, output stride
32 and 16 (dilated), and the encoder part of an SMP ``Unet`` checkpoint.
"""

from __future__ import annotations

import functools

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_mobileone")
from segcore_mobileone import reparameterize_model  # noqa: E402

smp_mobileone = pytest.importorskip("segmentation_models_pytorch.encoders.mobileone")

import smp_pairs  # noqa: E402

NAMES = ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4"]
#: fused kernels round differently: compare to each map's magnitude (s0's grow large)
FUSED_TOLERANCE = {"magnitude_scaled": True, "rtol": 1e-4}


@functools.lru_cache(maxsize=4)
def _pair(name: str, in_channels: int, output_stride: int) -> tuple[torch.nn.Module,
                                                                    torch.nn.Module]:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=None,
                                         output_stride=output_stride)
    with torch.no_grad():  # non-trivial batch-norm statistics, so that fusing them matters
        reference.train()(torch.randn(4, in_channels, 64, 64))
    reference.eval()
    ours = segcore.get_encoder(name, in_channels=in_channels, output_stride=output_stride)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours.eval()


(test_smp_encoder_weights_load_and_features_agree,
 test_dilated_features_agree) = smp_pairs.encoder_feature_tests(_pair, NAMES)


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_fused_encoders_agree_with_smps_fused_encoder(name: str, in_channels: int) -> None:
    reference, ours = _pair(name, in_channels, 32)
    smp_fused = smp_mobileone.reparameterize_model(reference).eval()
    ours_fused = reparameterize_model(ours)
    # SMP's fused state dict loads strictly into an encoder fused by us
    loaded = segcore.get_encoder(name, in_channels=in_channels).eval().reparameterize()
    loaded.load_state_dict(smp_fused.state_dict(), strict=True)
    x = torch.randn(1, in_channels, 64, 96, generator=torch.Generator().manual_seed(3))
    smp_pairs.assert_encoders_agree(smp_fused, loaded, x, f"{name} SMP-fused weights",
                                    **FUSED_TOLERANCE)
    smp_pairs.assert_encoders_agree(smp_fused, ours_fused, x, f"{name} fused by segcore",
                                    **FUSED_TOLERANCE)
    smp_pairs.assert_encoders_agree(reference, ours_fused, x,
                                    f"{name} fused vs SMP train-time", **FUSED_TOLERANCE)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_smp(name: str) -> None:
    smp_pairs.assert_parameters_equal_smps(name)


@pytest.mark.parametrize("name", ["mobileone_s0", "mobileone_s4"])
def test_smp_model_checkpoint_encoder_part_loads(name: str) -> None:
    smp_pairs.assert_smp_unet_encoder_part_agrees(name)
