"""PSPNet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Encoders: segcore's own "resnet34" and "tu-resnet18", which load SMP's encoder keys
unchanged (see ``smp_pairs``).
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_pspnet = pytest.importorskip("segcore_pspnet")

import smp_pairs  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
# segcore.build defaults to encoder_depth=5 (a core matter), so give the class's 3
PAIRS = smp_pairs.Pairs(smp.PSPNet, segcore_pspnet.PSPNet, "pspnet",
                        build_defaults={"encoder_depth": 3})

OPTION_SETS = {
    "defaults": {},
    # the head's upsampling: SMP keeps the factor as given, the mask is half the input size
    "upsampling-4": {"upsampling": 4},
    "out-64-no-batchnorm": {"psp_out_channels": 64, "psp_use_batchnorm": False},
    "dropout-0.5-sigmoid": {"psp_dropout": 0.5, "activation": "sigmoid"},
    "depth-4": {"encoder_depth": 4, "upsampling": 16, "psp_out_channels": 64},
    # SMP keeps upsampling=8 at depth 4: the mask is then half the input size
    "depth-4-default-upsampling": {"encoder_depth": 4},
    "depth-5-gray": {"encoder_depth": 5, "upsampling": 32, "in_channels": 1,
                     "psp_out_channels": 64},
    "norm-dict": {"decoder_use_norm": {"type": "batchnorm", "eps": 1e-3, "momentum": 0.3}},
    # (SMP cannot initialise a plain "instancenorm": it has no affine weight)
    "instancenorm": {"decoder_use_norm": {"type": "instancenorm", "affine": True},
                     "psp_out_channels": 64},
    "identity-norm": {"decoder_use_norm": "identity", "in_channels": 4},
    "aux-head": {"activation": "softmax", "psp_out_channels": 64,
                 "aux_params": {**smp_pairs.AUX, "activation": "sigmoid"}},
}


test_smp_checkpoint_loads_strictly_and_gives_the_same_output = PAIRS.parity_test(
    ENCODERS, OPTION_SETS,
    marks=[pytest.mark.filterwarnings("ignore:The usage of psp_use_batchnorm is deprecated")])


@pytest.mark.parametrize("upsampling", [4, 8])
def test_upsampling_changes_the_head_as_in_smp(upsampling):
    shape = PAIRS.head_upsampling_shape("resnet34", upsampling, torch.randn(1, 3, 64, 96))
    assert shape == (1, 3, 8 * upsampling, 12 * upsampling)


def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp("resnet34", torch.randn(1, 3, 64, 96), classes=2,
                                psp_out_channels=64)


def test_layernorm_has_smp_keys():
    """Same keys and shapes; the math differs on purpose: SMP's "layernorm" is an
    ``nn.LayerNorm`` over the last (width) axis of NCHW maps, which fails unless the width
    equals the channels, where segcore normalises over the channels."""
    options = {"decoder_use_norm": "layernorm", "psp_out_channels": 64}
    reference, ours = PAIRS.pair("resnet34", options)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    with torch.no_grad():
        assert ours(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_decoder_initialisation_and_math_match_smp():
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_pspnet.decoder import PSPDecoder
    from segmentation_models_pytorch.decoders.pspnet.decoder import PSPDecoder as SMPDecoder

    channels = (3, 8, 16, 24)
    arguments = {"encoder_channels": channels, "use_norm": "batchnorm", "out_channels": 20,
                 "dropout": 0.2}
    reference, ours = smp_pairs.initialised_pair(lambda: SMPDecoder(**arguments),
                                                 lambda: PSPDecoder(**arguments))
    features = [torch.randn(2, c, 64 // 2**i, 48 // 2**i) for i, c in enumerate(channels)]
    smp_pairs.assert_same_function(reference, ours, features)


def test_psp_use_batchnorm_maps_like_smp():
    """SMP 0.6 still takes the documented psp_use_batchnorm (with a deprecation warning)."""
    for value in (True, False):
        with pytest.warns(DeprecationWarning, match="psp_use_batchnorm"):
            reference = smp.PSPNet("resnet34", encoder_weights=None, psp_use_batchnorm=value)
        ours = segcore_pspnet.PSPNet("resnet34", encoder_weights=None, psp_use_batchnorm=value)
        assert list(ours.state_dict()) == list(reference.state_dict())


# -- random sizes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_pair():
    return PAIRS.pair("resnet34", {"classes": 2, "psp_out_channels": 64})


@settings(max_examples=10, deadline=None)
@given(height=st.integers(4, 20).map(lambda k: 8 * k),
       width=st.integers(4, 20).map(lambda k: 8 * k))
def test_sizes_divisible_by_8_give_smp_output_at_depth_3(default_pair, height, width):
    """At the default encoder_depth=3 the output stride is 8: SMP takes multiples of 8."""
    reference, ours = default_pair
    smp_pairs.assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))
