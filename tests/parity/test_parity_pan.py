"""PAN against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

The encoders are segcore's own ("resnet34" from segcore-resnet, "tu-resnet18" from
segcore-timm), whose state dicts already follow SMP's, so the whole SMP checkpoint (encoder,
decoder, heads) loads into the segcore model unchanged.

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

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
TOLERANCE = 1e-4

OPTION_SETS = {
    "defaults": {},
    "stride-32": {"encoder_output_stride": 32},
    "channels-16-upsampling-2": {"decoder_channels": 16, "upsampling": 2},
    "depth-4-nearest": {"encoder_depth": 4, "decoder_interpolation": "nearest"},
    "depth-3-gray-bicubic": {"encoder_depth": 3, "in_channels": 1,
                             "decoder_interpolation": "bicubic"},
    "aux-head": {"activation": "sigmoid", "decoder_channels": 24,
                 "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                "activation": "softmax"}},
}


def _stride(options: dict) -> int:
    return min(options.get("encoder_output_stride", 16), 2 ** options.get("encoder_depth", 5))


def _sizes(options: dict) -> list[tuple[int, int]]:
    """The smallest input SMP accepts and a non-square one (both multiples of the stride)."""
    stride = _stride(options)
    return [(8 * stride, 8 * stride), (10 * stride, 8 * stride)]


def _randomise_decoder_and_heads(model: torch.nn.Module) -> None:
    """Trained-looking weights and normalisation statistics outside the encoder."""
    torch.manual_seed(2)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.startswith("encoder.") or not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif name.endswith("weight") and tensor.dim() == 1:
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            else:
                tensor.copy_(torch.randn_like(tensor) * 0.2)


def _pair(encoder: str, via_build: bool = False, **options):
    options = {"classes": 3, **options}
    torch.manual_seed(0)
    reference = smp.PAN(encoder_name=encoder, encoder_weights=None, **options).eval()
    _randomise_decoder_and_heads(reference)
    if via_build:
        ours = segcore.build("pan", encoder=encoder, **options)
    else:
        ours = segcore_pan.PAN(encoder_name=encoder, encoder_weights=None, **options)
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


# SMP's aux "softmax" is nn.Softmax() without dim (same result on (N, classes) labels)
@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("encoder", ENCODERS)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, options):
    reference, ours = _pair(encoder, via_build=encoder.startswith("tu-"), **options)
    channels = options.get("in_channels", 3)
    for size in _sizes(options):
        torch.manual_seed(1)
        _assert_same_outputs(reference, ours, torch.randn(1, channels, *size))


def test_smp_deprecated_upscale_mode_gives_the_same_model():
    with pytest.warns(DeprecationWarning, match="upscale_mode"):
        torch.manual_seed(0)
        reference = smp.PAN("resnet34", encoder_weights=None, upscale_mode="nearest").eval()
    with pytest.warns(DeprecationWarning, match="upscale_mode"):
        ours = segcore_pan.PAN("resnet34", encoder_weights=None, upscale_mode="nearest")
    assert ours.options.decoder_interpolation == "nearest"
    _randomise_decoder_and_heads(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    _assert_same_outputs(reference, ours.eval(), torch.randn(1, 3, 128, 144))


def test_segcore_checkpoint_loads_into_smp():
    ours = segcore_pan.PAN("resnet34", encoder_weights=None, classes=2, decoder_channels=16)
    _randomise_decoder_and_heads(ours)
    reference = smp.PAN("resnet34", encoder_weights=None, classes=2, decoder_channels=16)
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference.eval(), ours.eval(), torch.randn(1, 3, 128, 176))


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_decoder_initialisation_and_math_match_smp(depth):
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_pan.decoder import PANDecoder
    from segmentation_models_pytorch.base import initialization
    from segmentation_models_pytorch.decoders.pan.decoder import PANDecoder as SMPDecoder

    from segcore.nn import initialize_decoder

    channels = (3, 8, 16, 24, 32, 40)[: depth + 1]
    arguments = {"encoder_channels": channels, "encoder_depth": depth, "decoder_channels": 12,
                 "interpolation_mode": "bicubic"}
    torch.manual_seed(3)
    reference = SMPDecoder(**arguments)
    initialization.initialize_decoder(reference)
    torch.manual_seed(3)
    ours = PANDecoder(**arguments)
    initialize_decoder(ours)
    expected, actual = reference.state_dict(), ours.state_dict()
    assert list(actual) == list(expected)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], msg=key)
    _randomise_decoder_and_heads(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    cap = min(16, 2**depth)
    features = [torch.randn(1, c, 9 * cap // min(2**i, cap), 10 * cap // min(2**i, cap))
                for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(features), reference.eval()(features))


# -- random sizes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_pair():
    return _pair("resnet34", classes=2)


# SMP needs multiples of the output stride (16 with the default options) and at least 8 times
# it; within that, any size gives SMP's exact output.
@settings(max_examples=10, deadline=None)
@given(height=st.integers(8, 12).map(lambda k: 16 * k),
       width=st.integers(8, 12).map(lambda k: 16 * k))
def test_sizes_smp_accepts_give_smp_output(default_pair, height, width):
    reference, ours = default_pair
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(1, 5).map(lambda k: 32 * k),
       width=st.integers(1, 5).map(lambda k: 32 * k))
def test_sizes_divisible_by_32_give_smp_output_or_the_same_refusal(default_pair, height,
                                                                   width):
    """The issue's property (sizes in [32, 160] divisible by 32): SMP's output where SMP takes
    the size (128 and 160), a refusal from both where the deepest features are too small."""
    reference, ours = default_pair
    x = torch.randn(1, 3, height, width)
    if min(height, width) >= 128:
        _assert_same_outputs(reference, ours, x)
        return
    with pytest.raises(RuntimeError), torch.no_grad():
        reference(x)
    # the smallest side that pads to 128 (the deepest features 8x8 at stride 16) is 113
    with pytest.raises(segcore.errors.InputShapeError, match="113x113"), torch.no_grad():
        ours(x)


@pytest.fixture(scope="module")
def padding_model():
    # a model of its own: after a too-small input the core still takes every size that
    # padding brings to the smallest working one (128)
    torch.manual_seed(0)
    return segcore_pan.PAN("resnet34", encoder_weights=None, classes=2).eval()


@settings(max_examples=10, deadline=None)
@given(height=st.integers(113, 200), width=st.integers(113, 200))
def test_any_size_that_pads_to_a_valid_one_gives_a_mask_of_that_size(padding_model, height,
                                                                     width):
    """Padded to the next multiple of 16 (at least 128) and cropped back."""
    ours = padding_model
    if height % 16 == 0 and width % 16 == 0:
        height += 1  # the test above covers the sizes SMP accepts
    with torch.no_grad():
        mask = ours(torch.randn(1, 3, height, width))
    assert mask.shape == (1, 2, height, width)
    assert torch.isfinite(mask).all()
