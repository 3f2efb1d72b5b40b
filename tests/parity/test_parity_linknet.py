"""Linknet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Both models use their library's own encoder of the same name (segcore's resnet34 and
tu-resnet18 load SMP's encoder keys unchanged), so the whole SMP checkpoint loads into the
segcore model.
"""

from __future__ import annotations

import functools
import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_linknet = pytest.importorskip("segcore_linknet")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402

TOLERANCE = 1e-4
ENCODERS = ["resnet34", "tu-resnet18"]

# (id, SMP arguments, segcore arguments when they differ)
OPTION_SETS = [
    ("default", {}, None),
    ("depth-3", {"encoder_depth": 3}, None),
    ("depth-4-gray", {"encoder_depth": 4, "in_channels": 1}, None),
    ("no-batchnorm", {"decoder_use_batchnorm": False}, None),
    ("use-norm-false", {"decoder_use_norm": False}, {"decoder_use_batchnorm": False}),
    # (SMP cannot initialise a plain "instancenorm": it has no affine weight)
    ("instancenorm", {"decoder_use_norm": {"type": "instancenorm", "affine": True}}, None),
    ("classes-3-softmax", {"classes": 3, "activation": "softmax"}, None),
    ("aux-head", {"classes": 2, "activation": "sigmoid",
                  "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                 "activation": "softmax"}}, None),
]


def _smp_linknet(encoder: str, **arguments) -> torch.nn.Module:
    with warnings.catch_warnings():
        # SMP 0.6 deprecates the documented decoder_use_batchnorm; segcore keeps it
        warnings.simplefilter("ignore", DeprecationWarning)
        return smp.Linknet(encoder_name=encoder, encoder_weights=None, **arguments)


def _pair(encoder: str, smp_arguments: dict, segcore_arguments: dict | None = None):
    torch.manual_seed(0)
    reference = _smp_linknet(encoder, **smp_arguments).eval()
    ours = segcore.Linknet(encoder_name=encoder, encoder_weights=None,
                           **(smp_arguments if segcore_arguments is None else segcore_arguments))
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours.eval()


def _assert_same_outputs(reference, ours, x) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SMP's softmax without dim
        expected, actual = reference(x), ours(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(("name", "smp_arguments", "segcore_arguments"), OPTION_SETS,
                         ids=[case[0] for case in OPTION_SETS])
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(
    encoder, name, smp_arguments, segcore_arguments
):
    reference, ours = _pair(encoder, smp_arguments, segcore_arguments)
    assert list(ours.state_dict()) == list(reference.state_dict())
    channels = smp_arguments.get("in_channels", 3)
    for size in [(64, 64), (96, 64)]:
        x = torch.randn(1, channels, *size)
        _assert_same_outputs(reference, ours, x)
    mask = ours.predict(torch.randn(1, channels, 64, 64))
    classes = smp_arguments.get("classes", 1)
    assert (mask[0] if isinstance(mask, tuple) else mask).shape == (1, classes, 64, 64)


def test_segcore_checkpoint_loads_into_smp():
    torch.manual_seed(1)
    ours = segcore.Linknet("resnet34", encoder_weights=None, classes=2,
                           decoder_use_batchnorm=False).eval()
    reference = _smp_linknet("resnet34", classes=2, decoder_use_batchnorm=False).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 96))


def test_transformer_style_encoder_with_a_placeholder_level():
    """tu-convnext has no reduction-2 features: both libraries skip that sum the same way."""
    reference, ours = _pair("tu-convnext_atto", {"classes": 2})
    assert ours.encoder.out_channels[1] == 0
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))


def test_same_decoder_module_tree_as_smp():
    reference, ours = _pair("resnet34", {})
    smp_modules = {name: type(m).__name__ for name, m in reference.decoder.named_modules()}
    our_modules = {name: type(m).__name__ for name, m in ours.decoder.named_modules()}
    assert our_modules.keys() == smp_modules.keys()
    for name, kind in smp_modules.items():  # the same layer types where SMP uses torch's
        if kind in ("Conv2d", "ConvTranspose2d", "BatchNorm2d", "ReLU", "Identity"):
            assert our_modules[name] == kind, name


# -- any input size -------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _resnet34_pair():
    return _pair("resnet34", {"classes": 2})


@settings(max_examples=10, deadline=None)
@given(height=st.integers(1, 5).map(lambda k: 32 * k),
       width=st.integers(1, 5).map(lambda k: 32 * k))
def test_sizes_divisible_by_32_give_smps_exact_output(height, width):
    reference, ours = _resnet34_pair()
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_any_size_gives_a_mask_of_that_size(height, width):
    _, ours = _resnet34_pair()
    with torch.no_grad():
        mask = ours(torch.randn(1, 3, height, width))
    assert mask.shape == (1, 2, height, width)
    if height % 32 == 0 and width % 32 == 0:  # sizes SMP accepts are not padded
        reference, _ = _resnet34_pair()
        _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))
