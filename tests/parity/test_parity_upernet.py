"""UPerNet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

The encoders are segcore's own ("resnet34" from segcore-resnet, "tu-resnet18" and the
transformer-style "tu-convnext_atto" from segcore-timm), whose state dicts already follow
SMP's, so the whole SMP checkpoint (encoder, decoder, heads) loads into the segcore model
unchanged.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_upernet = pytest.importorskip("segcore_upernet")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
TOLERANCE = 1e-4
SIZES = [(64, 64), (96, 64)]  # both divisible by 32, as SMP needs

OPTION_SETS = {
    "defaults": {},
    "channels-64": {"decoder_channels": 64},
    "no-norm": {"decoder_use_norm": False, "decoder_channels": 64},
    "identity-norm-4-channels": {"decoder_use_norm": "identity", "decoder_channels": 32,
                                 "in_channels": 4},
    "norm-dict": {"decoder_use_norm": {"type": "batchnorm", "eps": 1e-3, "momentum": 0.3},
                  "decoder_channels": 64},
    # the head's upsampling: SMP keeps the factor as given, the mask is twice the input size
    "upsampling-8": {"upsampling": 8, "decoder_channels": 64},
    "depth-4-upsampling-2": {"encoder_depth": 4, "upsampling": 2, "decoder_channels": 48},
    "depth-3-gray": {"encoder_depth": 3, "in_channels": 1, "decoder_channels": 64},
    "aux-head": {"activation": "sigmoid", "decoder_channels": 64,
                 "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                "activation": "softmax"}},
}

# tu-convnext_atto: transformer-style, its reduction-2 level is an empty 0-channel map in
# segcore (SMP builds a dummy there); UPerNet never reads that level
CONVNEXT_OPTION_SETS = {
    "defaults": {},
    "depth-4-no-norm": {"encoder_depth": 4, "decoder_use_norm": False, "decoder_channels": 64},
    "depth-3": {"encoder_depth": 3, "decoder_channels": 32},
    "aux-head": {"decoder_channels": 64, "aux_params": {"classes": 2, "dropout": 0.2}},
}


def _pair(encoder: str, via_build: bool = False, **options):
    options = {"classes": 3, **options}
    torch.manual_seed(0)
    reference = smp.UPerNet(encoder_name=encoder, encoder_weights=None, **options).eval()
    if via_build:
        ours = segcore.build("upernet", encoder=encoder, **options)
    else:
        ours = segcore_upernet.UPerNet(encoder_name=encoder, encoder_weights=None, **options)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours.eval()


def _randomise(decoder):
    """Trained-looking decoder weights and norm statistics, so comparisons mean something."""
    torch.manual_seed(2)
    with torch.no_grad():
        for name, tensor in decoder.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.2 + (1 if name.endswith("weight")
                                                               else 0))


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
    for size in SIZES:
        torch.manual_seed(1)
        _assert_same_outputs(reference, ours, torch.randn(1, channels, *size))


@pytest.mark.parametrize("options", list(CONVNEXT_OPTION_SETS.values()),
                         ids=list(CONVNEXT_OPTION_SETS))
def test_transformer_style_encoder_convnext(options):
    reference, ours = _pair("tu-convnext_atto", via_build=True, **options)
    assert ours.encoder.out_channels[1] == 0  # the empty reduction-2 level
    for size in SIZES:
        torch.manual_seed(1)
        _assert_same_outputs(reference, ours, torch.randn(1, 3, *size))


@pytest.mark.parametrize("upsampling", [1, 4, 8])
def test_upsampling_changes_the_head_as_in_smp(upsampling):
    reference, ours = _pair("resnet34", upsampling=upsampling, decoder_channels=32)
    reference_upsample, our_upsample = reference.segmentation_head[1], ours.segmentation_head[1]
    assert type(our_upsample) is type(reference_upsample)
    assert getattr(our_upsample, "scale_factor", 1) == getattr(reference_upsample,
                                                               "scale_factor", 1)
    x = torch.randn(1, 3, 64, 96)
    _assert_same_outputs(reference, ours, x)
    with torch.no_grad():
        assert ours(x).shape == (1, 3, 16 * upsampling, 24 * upsampling)


def test_segcore_checkpoint_loads_into_smp():
    torch.manual_seed(1)
    ours = segcore_upernet.UPerNet("resnet34", encoder_weights=None, classes=2,
                                   decoder_channels=64).eval()
    _randomise(ours.decoder)
    reference = smp.UPerNet("resnet34", encoder_weights=None, classes=2,
                            decoder_channels=64).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 96))


def test_trained_looking_checkpoint_gives_the_same_output():
    torch.manual_seed(0)
    reference = smp.UPerNet("tu-resnet18", encoder_weights=None, classes=2,
                            decoder_channels=64).eval()
    _randomise(reference.decoder)
    ours = segcore.build("upernet", encoder="tu-resnet18", classes=2, decoder_channels=64)
    ours.load_state_dict(reference.state_dict(), strict=True)
    _assert_same_outputs(reference, ours.eval(), torch.randn(2, 3, 96, 64))


def test_layernorm_has_smp_keys():
    """Same keys and shapes; the math differs on purpose: SMP's "layernorm" is an
    ``nn.LayerNorm`` over the last (width) axis of NCHW maps, which fails unless the width
    equals the channels (it always fails on the 1x1 pooling level), where segcore normalises
    over the channels."""
    options = {"decoder_use_norm": "layernorm", "decoder_channels": 64}
    torch.manual_seed(0)
    reference = smp.UPerNet("resnet34", encoder_weights=None, **options).eval()
    ours = segcore_upernet.UPerNet("resnet34", encoder_weights=None, **options).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert ours(x).shape == (1, 1, 64, 64)
        with pytest.raises(RuntimeError):
            reference(x)


def test_decoder_initialisation_and_math_match_smp():
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_upernet.decoder import UPerNetDecoder
    from segmentation_models_pytorch.base import initialization
    from segmentation_models_pytorch.decoders.upernet.decoder import (
        UPerNetDecoder as SMPDecoder,
    )

    from segcore.nn import initialize_decoder

    channels = (3, 8, 16, 24, 32, 40)
    for depth, use_norm in ((5, "batchnorm"), (4, False), (3, {"type": "batchnorm",
                                                               "eps": 1e-3})):
        arguments = {"encoder_channels": channels[: depth + 1], "encoder_depth": depth,
                     "decoder_channels": 20, "use_norm": use_norm}
        torch.manual_seed(3)
        reference = SMPDecoder(**arguments)
        initialization.initialize_decoder(reference)
        torch.manual_seed(3)
        ours = UPerNetDecoder(**arguments)
        initialize_decoder(ours)
        expected, actual = reference.state_dict(), ours.state_dict()
        assert list(actual) == list(expected)
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], msg=key)
        _randomise(ours)
        reference.load_state_dict(ours.state_dict())
        features = [torch.randn(2, c, 64 // 2**i, 96 // 2**i)
                    for i, c in enumerate(channels[: depth + 1])]
        with torch.no_grad():
            torch.testing.assert_close(ours.eval()(features), reference.eval()(features),
                                       atol=TOLERANCE, rtol=TOLERANCE)


# -- random sizes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_pair():
    return _pair("resnet34", classes=2, decoder_channels=64)


@settings(max_examples=10, deadline=None)
@given(height=st.integers(1, 5).map(lambda k: 32 * k),
       width=st.integers(1, 5).map(lambda k: 32 * k))
def test_sizes_divisible_by_32_give_smp_output(default_pair, height, width):
    reference, ours = default_pair
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_any_size_gives_a_mask_of_that_size(default_pair, height, width):
    reference, ours = default_pair
    if height % 32 == 0 and width % 32 == 0:
        height += 1  # the test above covers the sizes SMP accepts
    x = torch.randn(1, 3, height, width)
    with torch.no_grad():
        mask = ours(x)
        with pytest.raises(RuntimeError, match="divisible by 32"):
            reference(x)  # SMP refuses these sizes
        # the padded input goes through SMP; its mask, cropped, is ours
        padded = torch.nn.functional.pad(x, (0, -width % 32, 0, -height % 32))
        expected = reference(padded)[..., :height, :width]
    assert mask.shape == (1, 2, height, width)
    torch.testing.assert_close(mask, expected, atol=TOLERANCE, rtol=TOLERANCE)
