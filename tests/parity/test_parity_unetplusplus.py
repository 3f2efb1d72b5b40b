"""UnetPlusPlus against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Encoders: segcore's own "resnet34" and "tu-resnet18", which load SMP's encoder keys
unchanged (see ``smp_pairs``).
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_unetplusplus = pytest.importorskip("segcore_unetplusplus")

import smp_pairs  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from segcore.errors import InputShapeError  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
# the documented decoder_use_batchnorm: SMP 0.6 still takes it, with a DeprecationWarning
PAIRS = smp_pairs.Pairs(smp.UnetPlusPlus, segcore_unetplusplus.UnetPlusPlus, "unetplusplus",
                        quiet=["The usage of decoder_use_batchnorm is deprecated"])

OPTION_SETS = {
    "defaults": {},
    "scse": {"decoder_attention_type": "scse"},
    "channels": {"decoder_channels": (128, 64, 32, 16, 8)},
    "depth-4": {"encoder_depth": 4, "decoder_channels": (128, 64, 32, 16)},
    "depth-3-gray-bilinear": {"encoder_depth": 3, "decoder_channels": (64, 32, 16),
                              "in_channels": 1, "decoder_interpolation": "bilinear"},
    "no-batchnorm": {"decoder_use_batchnorm": False},
    # (SMP cannot initialise a plain "instancenorm": it has no affine weight)
    "instancenorm-nearest-exact": {"decoder_use_norm": {"type": "instancenorm", "affine": True},
                                   "decoder_interpolation": "nearest-exact"},
    "aux-head": {"activation": "sigmoid", "decoder_channels": (64, 48, 32, 16, 8),
                 "aux_params": {**smp_pairs.AUX, "activation": "softmax"}},
}


test_smp_checkpoint_loads_strictly_and_gives_the_same_output = PAIRS.parity_test(
    ENCODERS, OPTION_SETS)


# scSE attention is compared with at least 16 channels everywhere: below that SMP's squeeze
# has in_channels // 16 == 0 hidden channels, segcore.nn.SCSEModule keeps 1.
def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp("resnet34", torch.randn(1, 3, 64, 96), classes=2,
                                decoder_attention_type="scse",
                                decoder_channels=(64, 48, 32, 16, 16))


def test_transformer_style_timm_encoder_gives_the_same_empty_nodes():
    """tu-convnext_atto has no features at 1/2: SMP builds empty nodes there, so do we."""
    options = {"classes": 2, "decoder_channels": (64, 32, 16, 16, 8)}
    reference, ours = PAIRS.pair("tu-convnext_atto", options, via_build=True, trained=True)
    assert {k for k, b in ours.decoder.blocks.items() if b.is_empty} == {
        k for k, b in reference.decoder.blocks.items() if b.is_empty} == {"x_1_3", "x_2_3",
                                                                           "x_3_3"}
    smp_pairs.assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))


def test_decoder_initialisation_and_math_match_smp():
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_unetplusplus.decoder import UnetPlusPlusDecoder
    from segmentation_models_pytorch.decoders.unetplusplus.decoder import (
        UnetPlusPlusDecoder as SMPDecoder,
    )

    channels = (3, 16, 32, 48, 64, 80)
    decoder_channels = (64, 48, 32, 24, 16)
    arguments = {"attention_type": "scse", "interpolation_mode": "bicubic"}
    reference, ours = smp_pairs.initialised_pair(
        lambda: SMPDecoder(channels, decoder_channels, n_blocks=5, center=True, **arguments),
        lambda: UnetPlusPlusDecoder(channels, decoder_channels, add_center_block=True,
                                    **arguments))
    features = [torch.randn(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate(channels)]
    smp_pairs.assert_same_function(reference, ours, features)


# -- random sizes -----------------------------------------------------------------------------
class _Pair(tuple):
    """(SMP model, segcore model), with a short repr for hypothesis' failure reports."""

    def __repr__(self) -> str:
        return "(smp.UnetPlusPlus('resnet34'), UnetPlusPlus('resnet34'))"


@pytest.fixture(scope="module")
def default_pair():
    return _Pair(PAIRS.pair("resnet34", {"classes": 2}))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_other_sizes_give_smp_output_on_the_padded_input(default_pair, height, width):
    """segcore pads with zeros at the bottom and right to a multiple of 32 and crops the mask
    back: the same as running SMP on the padded image and cropping its mask."""
    smp_pairs.assert_smp_output_on_the_padded_input(*default_pair, height, width)


def test_without_padding_other_sizes_are_refused_like_smp(default_pair):
    reference, ours = default_pair
    ours.pad_inputs = False
    try:
        x = torch.randn(1, 3, 65, 64)
        with pytest.raises(RuntimeError, match="divisible by 32"):
            reference(x)
        with pytest.raises(InputShapeError, match="divisible by 32"):
            ours(x)
    finally:
        ours.pad_inputs = True
