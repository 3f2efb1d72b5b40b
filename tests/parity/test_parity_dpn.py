"""Parity of segcore-dpn with SMP 0.6.0: SMP encoder state dicts load strictly, same features.

Every DPN name, input channels 3 and 1, a square and a non-square input, output stride 32 and
16 (dilated), and the encoder part of an SMP ``Unet`` checkpoint.
"""

from __future__ import annotations

import functools

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_dpn")

import smp_pairs  # noqa: E402

NAMES = ["dpn68", "dpn68b", "dpn92", "dpn98", "dpn107", "dpn131"]


@functools.lru_cache(maxsize=2)  # one name at a time: the big ones hold ~300 MB each
def _pair(name: str, in_channels: int, output_stride: int) -> tuple[torch.nn.Module,
                                                                    torch.nn.Module]:
    return smp_pairs.smp_and_our_encoder(name, in_channels=in_channels,
                                         output_stride=output_stride)


(test_smp_encoder_weights_load_and_features_agree,
 test_dilated_features_agree) = smp_pairs.encoder_feature_tests(_pair, NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_smp(name: str) -> None:
    smp_pairs.assert_parameters_equal_smps(name)


@pytest.mark.parametrize("name", ["dpn68", "dpn68b"])
def test_smp_model_checkpoint_encoder_part_loads(name: str) -> None:
    smp_pairs.assert_smp_unet_encoder_part_agrees(name)
