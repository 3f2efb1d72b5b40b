"""Segformer against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Encoders: segcore's own "resnet34", "tu-resnet18" and the transformer-style
"tu-convnext_atto", which load SMP's encoder keys unchanged (see ``smp_pairs``).
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_segformer = pytest.importorskip("segcore_segformer")

import smp_pairs  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# tu-convnext_atto is transformer-style: no features at reduction 2 (an empty 0-channel map)
ENCODERS = ["resnet34", "tu-resnet18", "tu-convnext_atto"]
PAIRS = smp_pairs.Pairs(smp.Segformer, segcore_segformer.Segformer, "segformer")

OPTION_SETS = {
    "defaults": {},
    "channels-64": {"decoder_segmentation_channels": 64},
    "upsampling-2": {"upsampling": 2, "decoder_segmentation_channels": 32},
    "upsampling-1-sigmoid": {"upsampling": 1, "activation": "sigmoid"},
    "depth-4-gray": {"encoder_depth": 4, "in_channels": 1, "decoder_segmentation_channels": 48},
    "depth-3-four-channels": {"encoder_depth": 3, "in_channels": 4, "upsampling": 8},
    "aux-head": {"activation": "softmax", "decoder_segmentation_channels": 64,
                 "aux_params": {**smp_pairs.AUX, "activation": "sigmoid"}},
}


test_smp_checkpoint_loads_strictly_and_gives_the_same_output = PAIRS.parity_test(
    ENCODERS, OPTION_SETS)


@pytest.mark.parametrize("encoder", ["resnet34", "tu-convnext_atto"])
def test_segcore_checkpoint_loads_into_smp(encoder):
    PAIRS.assert_loads_into_smp(encoder, torch.randn(1, 3, 64, 96), via_build=True, classes=2,
                                decoder_segmentation_channels=32)


@pytest.mark.parametrize("channels", [(3, 8, 16, 24, 32, 40), (3, 0, 16, 24, 32, 40)],
                         ids=["cnn", "transformer-style"])
def test_decoder_initialisation_and_math_match_smp(channels):
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_segformer.decoder import SegformerDecoder
    from segmentation_models_pytorch.decoders.segformer.decoder import (
        SegformerDecoder as SMPDecoder,
    )

    arguments = {"encoder_channels": channels, "encoder_depth": 5,
                 "segmentation_channels": 24}
    reference, ours = smp_pairs.initialised_pair(lambda: SMPDecoder(**arguments),
                                                 lambda: SegformerDecoder(**arguments))
    features = [torch.randn(1, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(channels)]
    smp_pairs.assert_same_function(reference, ours, features)


# -- random sizes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_pair():
    return PAIRS.pair("resnet34", {"classes": 2, "decoder_segmentation_channels": 64})


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_any_size_gives_smp_output_on_the_padded_input_cropped(default_pair, height, width):
    """Sizes SMP refuses: the mask has the input's size and is SMP's output for the input
    zero-padded (bottom and right) to the next multiple of 32, cropped back."""
    smp_pairs.assert_smp_output_on_the_padded_input(*default_pair, height, width)
