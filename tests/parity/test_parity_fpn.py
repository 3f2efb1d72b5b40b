"""FPN against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Encoders: segcore's own "resnet34" and "tu-resnet18", which load SMP's encoder keys
unchanged (see ``smp_pairs``).
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_fpn = pytest.importorskip("segcore_fpn")

import smp_pairs  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
PAIRS = smp_pairs.Pairs(smp.FPN, segcore_fpn.FPN, "fpn")

OPTION_SETS = {
    "defaults": {},
    "cat-no-dropout": {"decoder_merge_policy": "cat", "decoder_dropout": 0.0},
    "upsampling-8": {"upsampling": 8, "decoder_interpolation": "bilinear"},
    "small-channels-depth-4": {"encoder_depth": 4, "upsampling": 2,
                               "decoder_pyramid_channels": 64,
                               "decoder_segmentation_channels": 32},
    # SMP keeps upsampling=4 at depth 4: the mask is then twice the input size
    "depth-4-default-upsampling": {"encoder_depth": 4},
    "depth-3-gray": {"encoder_depth": 3, "upsampling": 1, "in_channels": 1,
                     "decoder_segmentation_channels": 64, "decoder_interpolation": "area"},
    "aux-head": {"activation": "sigmoid", "decoder_merge_policy": "cat",
                 "aux_params": {**smp_pairs.AUX, "activation": "softmax"}},
}


test_smp_checkpoint_loads_strictly_and_gives_the_same_output = PAIRS.parity_test(
    ENCODERS, OPTION_SETS)


def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp("resnet34", torch.randn(1, 3, 64, 96), classes=2,
                                decoder_merge_policy="cat")


def test_decoder_initialisation_and_math_match_smp():
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_fpn.decoder import FPNDecoder
    from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder as SMPDecoder

    channels = (3, 8, 16, 24, 32, 40)
    arguments = {"encoder_channels": channels, "encoder_depth": 5, "pyramid_channels": 48,
                 "segmentation_channels": 64, "dropout": 0.2, "merge_policy": "add",
                 "interpolation_mode": "bicubic"}
    reference, ours = smp_pairs.initialised_pair(lambda: SMPDecoder(**arguments),
                                                 lambda: FPNDecoder(**arguments))
    features = [torch.randn(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate(channels)]
    smp_pairs.assert_same_function(reference, ours, features)
