"""UnetPlusPlus against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

The encoders are segcore's own ("resnet34" from segcore-resnet, "tu-resnet18" from
segcore-timm), whose state dicts already follow SMP's, so the whole SMP checkpoint (encoder,
decoder, heads) loads into the segcore model unchanged.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_unetplusplus = pytest.importorskip("segcore_unetplusplus")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402
from segcore.errors import InputShapeError  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
TOLERANCE = 1e-4
SIZES = [(64, 64), (96, 64)]  # both divisible by 32, as SMP needs

OPTION_SETS = {
    "defaults": {},
    "scse": {"decoder_attention_type": "scse"},
    "channels": {"decoder_channels": (128, 64, 32, 16, 8)},
    "depth-4": {"encoder_depth": 4, "decoder_channels": (128, 64, 32, 16)},
    "depth-3-gray-bilinear": {"encoder_depth": 3, "decoder_channels": (64, 32, 16),
                              "in_channels": 1, "decoder_interpolation": "bilinear"},
    # the documented argument; SMP 0.6 still takes it, with a DeprecationWarning
    "no-batchnorm": {"decoder_use_batchnorm": False},
    # (SMP cannot initialise a plain "instancenorm": it has no affine weight)
    "instancenorm-nearest-exact": {"decoder_use_norm": {"type": "instancenorm", "affine": True},
                                   "decoder_interpolation": "nearest-exact"},
    "aux-head": {"activation": "sigmoid", "decoder_channels": (64, 48, 32, 16, 8),
                 "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                "activation": "softmax"}},
}


def _pair(encoder: str, via_build: bool = False, **options):
    options = {"classes": 3, **options}
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The usage of decoder_use_batchnorm is deprecated")
        reference = smp.UnetPlusPlus(encoder_name=encoder, encoder_weights=None, **options)
    if via_build:
        ours = segcore.build("unetplusplus", encoder=encoder, **options)
    else:
        ours = segcore_unetplusplus.UnetPlusPlus(encoder_name=encoder, encoder_weights=None,
                                                 **options)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference.eval(), ours.eval()


def _assert_same_outputs(reference, ours, x):
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, atol=TOLERANCE, rtol=TOLERANCE)


def _trained_looking(model):
    """Random decoder weights and norm statistics, so a comparison means something."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, tensor in model.decoder.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator) * 0.2
                tensor.copy_(noise.abs() + 0.5 if name.endswith(("running_var", "weight"))
                             and tensor.dim() == 1 else noise)


# SMP's aux "softmax" is nn.Softmax() without dim (same result on (N, classes) labels)
@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("encoder", ENCODERS)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, options):
    reference, ours = _pair(encoder, via_build=encoder.startswith("tu-"), **options)
    channels = options.get("in_channels", 3)
    for size in SIZES:
        torch.manual_seed(1)
        _assert_same_outputs(reference, ours, torch.randn(1, channels, *size))


# scSE attention is compared with at least 16 channels everywhere: below that SMP's squeeze
# has in_channels // 16 == 0 hidden channels, segcore.nn.SCSEModule keeps 1.
def test_segcore_checkpoint_loads_into_smp():
    torch.manual_seed(1)
    ours = segcore_unetplusplus.UnetPlusPlus("resnet34", encoder_weights=None, classes=2,
                                             decoder_attention_type="scse",
                                             decoder_channels=(64, 48, 32, 16, 16)).eval()
    _trained_looking(ours)
    reference = smp.UnetPlusPlus("resnet34", encoder_weights=None, classes=2,
                                 decoder_attention_type="scse",
                                 decoder_channels=(64, 48, 32, 16, 16)).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 96))


def test_transformer_style_timm_encoder_gives_the_same_empty_nodes():
    """tu-convnext_atto has no features at 1/2: SMP builds empty nodes there, so do we."""
    options = {"classes": 2, "decoder_channels": (64, 32, 16, 16, 8)}
    reference, ours = _pair("tu-convnext_atto", via_build=True, **options)
    assert {k for k, b in ours.decoder.blocks.items() if b.is_empty} == {
        k for k, b in reference.decoder.blocks.items() if b.is_empty} == {"x_1_3", "x_2_3",
                                                                           "x_3_3"}
    _trained_looking(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))


def test_decoder_initialisation_and_math_match_smp():
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_unetplusplus.decoder import UnetPlusPlusDecoder
    from segmentation_models_pytorch.base import initialization
    from segmentation_models_pytorch.decoders.unetplusplus.decoder import (
        UnetPlusPlusDecoder as SMPDecoder,
    )

    from segcore.nn import initialize_decoder

    channels = (3, 16, 32, 48, 64, 80)
    decoder_channels = (64, 48, 32, 24, 16)
    torch.manual_seed(3)
    reference = SMPDecoder(channels, decoder_channels, n_blocks=5, attention_type="scse",
                           interpolation_mode="bicubic", center=True)
    initialization.initialize_decoder(reference)
    torch.manual_seed(3)
    ours = UnetPlusPlusDecoder(channels, decoder_channels, attention_type="scse",
                               interpolation_mode="bicubic", add_center_block=True)
    initialize_decoder(ours)
    expected, actual = reference.state_dict(), ours.state_dict()
    assert list(actual) == list(expected)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], msg=key)
    features = [torch.randn(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(features), reference.eval()(features))


# -- random sizes -----------------------------------------------------------------------------
class _Pair(tuple):
    """(SMP model, segcore model), with a short repr for hypothesis' failure reports."""

    def __repr__(self) -> str:
        return "(smp.UnetPlusPlus('resnet34'), UnetPlusPlus('resnet34'))"


@pytest.fixture(scope="module")
def default_pair():
    return _Pair(_pair("resnet34", classes=2))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(1, 5).map(lambda k: 32 * k),
       width=st.integers(1, 5).map(lambda k: 32 * k))
def test_sizes_divisible_by_32_give_smp_output(default_pair, height, width):
    reference, ours = default_pair
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_other_sizes_give_smp_output_on_the_padded_input(default_pair, height, width):
    """segcore pads with zeros at the bottom and right to a multiple of 32 and crops the mask
    back: the same as running SMP on the padded image and cropping its mask."""
    reference, ours = default_pair
    if height % 32 == 0 and width % 32 == 0:
        height += 1  # the test above covers the sizes SMP accepts
    x = torch.randn(1, 3, height, width)
    padded = F.pad(x, (0, -width % 32, 0, -height % 32))
    with torch.no_grad():
        mask = ours(x)
        expected = reference(padded)[..., :height, :width]
    assert mask.shape == (1, 2, height, width)
    torch.testing.assert_close(mask, expected, atol=TOLERANCE, rtol=TOLERANCE)


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
