"""MAnet against SMP 0.6.0: same state-dict keys, strict loading, same outputs.

The encoders are segcore's own ("resnet34" from segcore-resnet, "tu-resnet18" from
segcore-timm), which load SMP's encoder keys unchanged; SMP builds with ``encoder_weights=None``.
"""

from __future__ import annotations

import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_manet = pytest.importorskip("segcore_manet")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
TOLERANCE = 1e-4

# (SMP arguments, segcore arguments when they differ)
CASES = {
    "default": ({}, None),
    "pab-32": ({"decoder_pab_channels": 32}, None),
    "small-channels": ({"decoder_channels": (128, 64, 32, 16, 8)}, None),
    "no-batchnorm": ({"decoder_use_norm": False}, {"decoder_use_batchnorm": False}),
    "depth-4": ({"encoder_depth": 4, "decoder_channels": (128, 64, 32, 16)}, None),
    "depth-3-gray-bilinear": ({"encoder_depth": 3, "decoder_channels": (64, 32, 16),
                               "in_channels": 1, "decoder_interpolation": "bilinear"}, None),
    # (SMP 0.6.0's "layernorm" is nn.LayerNorm(C) on NCHW maps and fails in SMP itself; its
    # plain "instancenorm" has no affine weight and SMP cannot initialise it)
    "instancenorm-nearest-exact": ({"decoder_use_norm": {"type": "instancenorm", "affine": True},
                                    "decoder_interpolation": "nearest-exact"}, None),
    "aux-head": ({"activation": "sigmoid",
                  "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                 "activation": "softmax"}}, None),
}


def _pair(encoder: str, smp_arguments: dict, segcore_arguments: dict | None = None):
    smp_arguments = {"classes": 3, **smp_arguments}
    segcore_arguments = {"classes": 3, **(segcore_arguments or smp_arguments)}
    torch.manual_seed(0)
    reference = smp.MAnet(encoder_name=encoder, encoder_weights=None, **smp_arguments).eval()
    torch.manual_seed(0)
    ours = segcore.MAnet(encoder_name=encoder, encoder_weights=None, **segcore_arguments).eval()
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def _assert_same_outputs(reference, ours, x):
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("encoder", ENCODERS)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, case):
    smp_arguments, segcore_arguments = CASES[case]
    reference, ours = _pair(encoder, smp_arguments, segcore_arguments)
    channels = smp_arguments.get("in_channels", 3)
    for size in ((64, 64), (96, 64)):
        _assert_same_outputs(reference, ours, torch.randn(1, channels, *size))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_segcore_checkpoint_loads_into_smp(encoder):
    torch.manual_seed(1)
    ours = segcore.MAnet(encoder, encoder_weights=None, classes=2,
                         decoder_pab_channels=16).eval()
    reference = smp.MAnet(encoder, encoder_weights=None, classes=2,
                          decoder_pab_channels=16).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("value", [True, False])
def test_decoder_use_batchnorm_maps_like_smp(value):
    """SMP 0.6 still accepts the documented decoder_use_batchnorm (with a deprecation warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference, ours = _pair("tu-resnet18", {"decoder_use_batchnorm": value,
                                                "decoder_channels": (32, 16, 16, 8, 8)})
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))


def test_same_initialisation_as_smp():
    """Kaiming-uniform decoder convolutions and Xavier head, drawn in SMP's order."""
    torch.manual_seed(0)
    ours = segcore.MAnet("tu-resnet18", encoder_weights=None, classes=3)
    torch.manual_seed(0)
    reference = smp.MAnet("tu-resnet18", encoder_weights=None, classes=3)
    theirs = reference.state_dict()
    for key, value in ours.state_dict().items():
        if key.startswith(("decoder.", "segmentation_head.")) and value.is_floating_point():
            torch.testing.assert_close(value, theirs[key], msg=key)


# -- random sizes -----------------------------------------------------------------------------
_MODELS: dict[str, tuple[torch.nn.Module, torch.nn.Module]] = {}


def _default_pair():
    if "default" not in _MODELS:
        _MODELS["default"] = _pair("resnet34", {"decoder_channels": (64, 32, 16, 16, 8)})
    return _MODELS["default"]


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.sampled_from([32, 64, 96, 128, 160]),
       width=st.sampled_from([32, 64, 96, 128, 160]))
def test_sizes_divisible_by_32_give_smp_outputs(height, width):
    reference, ours = _default_pair()
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_any_size_gives_a_mask_of_that_size(height, width):
    """Once the core pads inputs to the output stride and crops the mask, any size works.

    SMP refuses sizes not divisible by 32, so only the shape is compared; sizes divisible by
    32 are not padded and must still give SMP's exact output.
    """
    reference, ours = _default_pair()
    x = torch.randn(1, 3, height, width)
    with torch.no_grad():
        mask = ours(x)
    assert mask.shape == (1, 3, height, width)
    assert bool(torch.isfinite(mask).all())
    if height % 32 == 0 and width % 32 == 0:
        _assert_same_outputs(reference, ours, x)
