"""PAN against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Encoders: segcore's own "resnet34" and "tu-resnet18", which load SMP's encoder keys
unchanged (see ``smp_pairs``).

PAN's attention block pools the deepest features three times, so SMP (and segcore) need them
at least 8x8: inputs of at least 8 times the output stride (128x128 with the default
``encoder_output_stride=16``, 256x256 with 32, 64x64 at ``encoder_depth=3``). SMP also needs
multiples of the output stride (16 by default, not 32).
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_pan = pytest.importorskip("segcore_pan")

import smp_pairs  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
PAIRS = smp_pairs.Pairs(smp.PAN, segcore_pan.PAN, "pan")

OPTION_SETS = {
    "defaults": {},
    "stride-32": {"encoder_output_stride": 32},
    "channels-16-upsampling-2": {"decoder_channels": 16, "upsampling": 2},
    "depth-4-nearest": {"encoder_depth": 4, "decoder_interpolation": "nearest"},
    "depth-3-gray-bicubic": {"encoder_depth": 3, "in_channels": 1,
                             "decoder_interpolation": "bicubic"},
    "aux-head": {"activation": "sigmoid", "decoder_channels": 24,
                 "aux_params": {**smp_pairs.AUX, "activation": "softmax"}},
}


def _stride(options: dict) -> int:
    return min(options.get("encoder_output_stride", 16), 2 ** options.get("encoder_depth", 5))


def _sizes(options: dict) -> list[tuple[int, int]]:
    """The smallest input SMP accepts and a non-square one (both multiples of the stride)."""
    stride = _stride(options)
    return [(8 * stride, 8 * stride), (10 * stride, 8 * stride)]


@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("encoder", ENCODERS)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, options):
    """At the smallest size SMP accepts for the options, and a non-square one."""
    PAIRS.assert_parity(encoder, options, via_build=encoder.startswith("tu-"), trained=True,
                        sizes=_sizes(options))


def test_smp_deprecated_upscale_mode_gives_the_same_model():
    with pytest.warns(DeprecationWarning, match="upscale_mode"):
        torch.manual_seed(0)
        reference = smp.PAN("resnet34", encoder_weights=None, upscale_mode="nearest").eval()
    with pytest.warns(DeprecationWarning, match="upscale_mode"):
        ours = segcore_pan.PAN("resnet34", encoder_weights=None, upscale_mode="nearest")
    assert ours.options.decoder_interpolation == "nearest"
    smp_pairs.trained_looking(reference, skip=("encoder.",))
    ours.load_state_dict(reference.state_dict(), strict=True)
    smp_pairs.assert_same_outputs(reference, ours.eval(), torch.randn(1, 3, 128, 144))


def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp("resnet34", torch.randn(1, 3, 128, 176), classes=2,
                                decoder_channels=16)


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_decoder_initialisation_and_math_match_smp(depth):
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_pan.decoder import PANDecoder
    from segmentation_models_pytorch.decoders.pan.decoder import PANDecoder as SMPDecoder

    channels = (3, 8, 16, 24, 32, 40)[: depth + 1]
    arguments = {"encoder_channels": channels, "encoder_depth": depth, "decoder_channels": 12,
                 "interpolation_mode": "bicubic"}
    reference, ours = smp_pairs.initialised_pair(lambda: SMPDecoder(**arguments),
                                                 lambda: PANDecoder(**arguments))
    smp_pairs.trained_looking(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    cap = min(16, 2**depth)
    features = [torch.randn(1, c, 9 * cap // min(2**i, cap), 10 * cap // min(2**i, cap))
                for i, c in enumerate(channels)]
    smp_pairs.assert_same_function(reference, ours, features)


# -- random sizes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_pair():
    return PAIRS.pair("resnet34", {"classes": 2}, trained=True)


# SMP needs multiples of the output stride (16 with the default options) and at least 8 times
# it; within that, any size gives SMP's exact output.
@settings(max_examples=10, deadline=None)
@given(height=st.integers(8, 12).map(lambda k: 16 * k),
       width=st.integers(8, 12).map(lambda k: 16 * k))
def test_sizes_smp_accepts_give_smp_output(default_pair, height, width):
    reference, ours = default_pair
    smp_pairs.assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))
