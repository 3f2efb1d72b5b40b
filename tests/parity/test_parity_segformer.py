"""Segformer against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

The encoders are segcore's own ("resnet34" from segcore-resnet, "tu-resnet18" and the
transformer-style "tu-convnext_atto" from segcore-timm), whose state dicts already follow
SMP's, so the whole SMP checkpoint (encoder, decoder, heads) loads into the segcore model
unchanged.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_segformer = pytest.importorskip("segcore_segformer")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402

# tu-convnext_atto is transformer-style: no features at reduction 2 (an empty 0-channel map)
ENCODERS = ["resnet34", "tu-resnet18", "tu-convnext_atto"]
TOLERANCE = 1e-4
SIZES = [(64, 64), (96, 64)]  # both divisible by 32, as SMP needs

OPTION_SETS = {
    "defaults": {},
    "channels-64": {"decoder_segmentation_channels": 64},
    "upsampling-2": {"upsampling": 2, "decoder_segmentation_channels": 32},
    "upsampling-1-sigmoid": {"upsampling": 1, "activation": "sigmoid"},
    "depth-4-gray": {"encoder_depth": 4, "in_channels": 1, "decoder_segmentation_channels": 48},
    "depth-3-four-channels": {"encoder_depth": 3, "in_channels": 4, "upsampling": 8},
    "aux-head": {"activation": "softmax", "decoder_segmentation_channels": 64,
                 "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                "activation": "sigmoid"}},
}


def _pair(encoder: str, via_build: bool = False, **options):
    options = {"classes": 3, **options}
    torch.manual_seed(0)
    reference = smp.Segformer(encoder_name=encoder, encoder_weights=None, **options).eval()
    if via_build:
        ours = segcore.build("segformer", encoder=encoder, **options)
    else:
        ours = segcore_segformer.Segformer(encoder_name=encoder, encoder_weights=None, **options)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours.eval()


def _assert_same_outputs(reference, ours, x):
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, atol=TOLERANCE, rtol=TOLERANCE)


# SMP's "softmax" is nn.Softmax() without dim for the aux head (same result on (N, classes))
@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("encoder", ENCODERS)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, options):
    reference, ours = _pair(encoder, via_build=encoder.startswith("tu-"), **options)
    channels = options.get("in_channels", 3)
    for size in SIZES:
        torch.manual_seed(1)
        _assert_same_outputs(reference, ours, torch.randn(1, channels, *size))


@pytest.mark.parametrize("encoder", ["resnet34", "tu-convnext_atto"])
def test_segcore_checkpoint_loads_into_smp(encoder):
    torch.manual_seed(1)
    ours = segcore.build("segformer", encoder=encoder, classes=2,
                         decoder_segmentation_channels=32).eval()
    with torch.no_grad():  # trained-looking norms, so the comparison means something
        for name, tensor in ours.decoder.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.2
                             + (1 if name.endswith("weight") else 0))
    reference = smp.Segformer(encoder, encoder_weights=None, classes=2,
                              decoder_segmentation_channels=32).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 96))


@pytest.mark.parametrize("channels", [(3, 8, 16, 24, 32, 40), (3, 0, 16, 24, 32, 40)],
                         ids=["cnn", "transformer-style"])
def test_decoder_initialisation_and_math_match_smp(channels):
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_segformer.decoder import SegformerDecoder
    from segmentation_models_pytorch.base import initialization
    from segmentation_models_pytorch.decoders.segformer.decoder import (
        SegformerDecoder as SMPDecoder,
    )

    from segcore.nn import initialize_decoder

    arguments = {"encoder_channels": channels, "encoder_depth": 5,
                 "segmentation_channels": 24}
    torch.manual_seed(3)
    reference = SMPDecoder(**arguments)
    initialization.initialize_decoder(reference)
    torch.manual_seed(3)
    ours = SegformerDecoder(**arguments)
    initialize_decoder(ours)
    expected, actual = reference.state_dict(), ours.state_dict()
    assert list(actual) == list(expected)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], msg=key)
    features = [torch.randn(1, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(features), reference.eval()(features))


# -- random sizes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_pair():
    return _pair("resnet34", classes=2, decoder_segmentation_channels=64)


@settings(max_examples=10, deadline=None)
@given(height=st.integers(1, 5).map(lambda k: 32 * k),
       width=st.integers(1, 5).map(lambda k: 32 * k))
def test_sizes_divisible_by_32_give_smp_output(default_pair, height, width):
    reference, ours = default_pair
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_any_size_gives_smp_output_on_the_padded_input_cropped(default_pair, height, width):
    """Sizes SMP refuses: the mask has the input's size and is SMP's output for the input
    zero-padded (bottom and right) to the next multiple of 32, cropped back."""
    reference, ours = default_pair
    if height % 32 == 0 and width % 32 == 0:
        height += 1  # the test above covers the sizes SMP accepts
    x = torch.randn(1, 3, height, width)
    padded = torch.nn.functional.pad(x, (0, -width % 32, 0, -height % 32))
    with torch.no_grad():
        mask = ours(x)
        expected = reference(padded)[..., :height, :width]
    assert mask.shape == (1, 2, height, width)
    torch.testing.assert_close(mask, expected, atol=TOLERANCE, rtol=TOLERANCE)
