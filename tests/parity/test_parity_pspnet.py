"""PSPNet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

The encoders are segcore's own ("resnet34" from segcore-resnet, "tu-resnet18" from
segcore-timm), whose state dicts already follow SMP's, so the whole SMP checkpoint (encoder,
decoder, heads) loads into the segcore model unchanged.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_pspnet = pytest.importorskip("segcore_pspnet")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
TOLERANCE = 1e-4
SIZES = [(64, 64), (96, 64)]  # both divisible by 32, which SMP accepts at every depth

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
                 "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                "activation": "sigmoid"}},
}


def _pair(encoder: str, via_build: bool = False, **options):
    options = {"classes": 3, **options}
    torch.manual_seed(0)
    reference = smp.PSPNet(encoder_name=encoder, encoder_weights=None, **options).eval()
    if via_build:
        # segcore.build defaults to encoder_depth=5 (a core matter), so give the class's 3
        ours = segcore.build("pspnet", encoder=encoder,
                             **{"encoder_depth": 3, **options})
    else:
        ours = segcore_pspnet.PSPNet(encoder_name=encoder, encoder_weights=None, **options)
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


@pytest.mark.filterwarnings("ignore:The usage of psp_use_batchnorm is deprecated")
# SMP's mask "softmax" is nn.Softmax() without dim (dim 1 for NCHW masks, as segcore's)
@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("encoder", ENCODERS)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, options):
    reference, ours = _pair(encoder, via_build=encoder.startswith("tu-"), **options)
    channels = options.get("in_channels", 3)
    for size in SIZES:
        torch.manual_seed(1)
        _assert_same_outputs(reference, ours, torch.randn(1, channels, *size))


@pytest.mark.parametrize("upsampling", [4, 8])
def test_upsampling_changes_the_head_as_in_smp(upsampling):
    reference, ours = _pair("resnet34", upsampling=upsampling)
    assert ours.segmentation_head[1].scale_factor == reference.segmentation_head[1].scale_factor
    x = torch.randn(1, 3, 64, 96)
    _assert_same_outputs(reference, ours, x)
    with torch.no_grad():
        assert ours(x).shape == (1, 3, 8 * upsampling, 12 * upsampling)


def test_segcore_checkpoint_loads_into_smp():
    torch.manual_seed(1)
    ours = segcore_pspnet.PSPNet("resnet34", encoder_weights=None, classes=2,
                                 psp_out_channels=64).eval()
    with torch.no_grad():  # trained-looking norms, so the comparison means something
        for name, tensor in ours.decoder.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.2 + (1 if name.endswith("weight")
                                                               else 0))
    reference = smp.PSPNet("resnet34", encoder_weights=None, classes=2,
                           psp_out_channels=64).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 96))


def test_layernorm_has_smp_keys():
    """Same keys and shapes; the math differs on purpose: SMP's "layernorm" is an
    ``nn.LayerNorm`` over the last (width) axis of NCHW maps, which fails unless the width
    equals the channels, where segcore normalises over the channels."""
    options = {"decoder_use_norm": "layernorm", "psp_out_channels": 64}
    reference, ours = _pair("resnet34", **options)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    with torch.no_grad():
        assert ours(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_decoder_initialisation_and_math_match_smp():
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_pspnet.decoder import PSPDecoder
    from segmentation_models_pytorch.base import initialization
    from segmentation_models_pytorch.decoders.pspnet.decoder import PSPDecoder as SMPDecoder

    from segcore.nn import initialize_decoder

    channels = (3, 8, 16, 24)
    arguments = {"encoder_channels": channels, "use_norm": "batchnorm", "out_channels": 20,
                 "dropout": 0.2}
    torch.manual_seed(3)
    reference = SMPDecoder(**arguments)
    initialization.initialize_decoder(reference)
    torch.manual_seed(3)
    ours = PSPDecoder(**arguments)
    initialize_decoder(ours)
    expected, actual = reference.state_dict(), ours.state_dict()
    assert list(actual) == list(expected)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], msg=key)
    features = [torch.randn(2, c, 64 // 2**i, 48 // 2**i) for i, c in enumerate(channels)]
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(features), reference.eval()(features))


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
    return _pair("resnet34", classes=2, psp_out_channels=64)


@settings(max_examples=10, deadline=None)
@given(height=st.integers(1, 5).map(lambda k: 32 * k),
       width=st.integers(1, 5).map(lambda k: 32 * k))
def test_sizes_divisible_by_32_give_smp_output(default_pair, height, width):
    reference, ours = default_pair
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(4, 20).map(lambda k: 8 * k),
       width=st.integers(4, 20).map(lambda k: 8 * k))
def test_sizes_divisible_by_8_give_smp_output_at_depth_3(default_pair, height, width):
    """At the default encoder_depth=3 the output stride is 8: SMP takes multiples of 8."""
    reference, ours = default_pair
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_any_size_gives_a_mask_of_that_size(default_pair, height, width):
    _, ours = default_pair
    if height % 8 == 0 and width % 8 == 0:
        height += 1  # the tests above cover the sizes SMP accepts
    with torch.no_grad():
        mask = ours(torch.randn(1, 3, height, width))
    assert mask.shape == (1, 2, height, width)
    assert torch.isfinite(mask).all()
