"""MAnet against SMP 0.6.0: same state-dict keys, strict loading, same outputs.

The encoders are segcore's own ("resnet34" from segcore-resnet, "tu-resnet18" from
segcore-timm), which load SMP's encoder keys unchanged; SMP builds with ``encoder_weights=None``.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_manet = pytest.importorskip("segcore_manet")

import smp_pairs  # noqa: E402

import segcore  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
PAIRS = smp_pairs.Pairs(smp.MAnet, segcore.MAnet, "manet")

# (SMP arguments, segcore arguments when they differ)
CASES = {
    "default": ({}, None),
    "pab-32": ({"decoder_pab_channels": 32}, None),
    "small-channels": ({"decoder_channels": (128, 64, 32, 16, 8)}, None),
    "no-batchnorm": ({"decoder_use_norm": False}, {"decoder_use_batchnorm": False}),
    "depth-4": ({"encoder_depth": 4, "decoder_channels": (128, 64, 32, 16)}, None),
    "depth-3-gray-bilinear": ({"encoder_depth": 3, "decoder_channels": (64, 32, 16),
                               "in_channels": 1, "decoder_interpolation": "bilinear"}, None),
    # (SMP 0.6.0's "layernorm" is nn.LayerNorm(C) on NCHW maps and fails in SMP itself; its
    # plain "instancenorm" has no affine weight and SMP cannot initialise it)
    "instancenorm-nearest-exact": ({"decoder_use_norm": {"type": "instancenorm", "affine": True},
                                    "decoder_interpolation": "nearest-exact"}, None),
    "aux-head": ({"activation": "sigmoid",
                  "aux_params": {**smp_pairs.AUX, "activation": "softmax"}}, None),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("encoder", ENCODERS)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, case):
    PAIRS.assert_parity(encoder, *CASES[case])


@pytest.mark.parametrize("encoder", ENCODERS)
def test_segcore_checkpoint_loads_into_smp(encoder):
    PAIRS.assert_loads_into_smp(encoder, torch.randn(1, 3, 64, 64), classes=2,
                                decoder_pab_channels=16)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("value", [True, False])
def test_decoder_use_batchnorm_maps_like_smp(value):
    """SMP 0.6 still accepts the documented decoder_use_batchnorm (with a deprecation warning)."""
    PAIRS.assert_parity("tu-resnet18", {"decoder_use_batchnorm": value,
                                        "decoder_channels": (32, 16, 16, 8, 8)}, sizes=[(64, 64)])


def test_same_initialisation_as_smp():
    """Kaiming-uniform decoder convolutions and Xavier head, drawn in SMP's order."""
    PAIRS.assert_same_initialisation("tu-resnet18")
