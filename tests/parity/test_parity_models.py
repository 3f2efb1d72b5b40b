"""SMP 0.6.0 checkpoints load into segcore models (strict) and give the same outputs.

Run with ``nox -s parity`` (SMP is installed only in that session's environment).
"""

from __future__ import annotations

import pytest
import torch

import segcore

smp = pytest.importorskip("segmentation_models_pytorch")

ARCHITECTURES = {"unet": "Unet", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus"}
ENCODERS = ["resnet18", "resnet34", "resnext50_32x4d", "tu-resnet18"]
TOLERANCE = 1e-4


def _pair(architecture: str, encoder: str, **options):
    torch.manual_seed(0)
    reference = getattr(smp, ARCHITECTURES[architecture])(
        encoder_name=encoder, encoder_weights=None, **options
    ).eval()
    ours = segcore.build(architecture, encoder=encoder, **options).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def _assert_same_outputs(reference, ours, x):
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(expected) == len(actual)
    for a, b in zip(actual, expected):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_checkpoint_loads_strict_and_outputs_agree(architecture, encoder):
    reference, ours = _pair(architecture, encoder, classes=3)
    assert list(ours.state_dict()) == list(reference.state_dict())
    _assert_same_outputs(reference, ours, torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_parity_with_aux_head_gray_input_and_shallower_depth(architecture):
    options = {"in_channels": 1, "classes": 5, "encoder_depth": 4,
               "aux_params": {"classes": 4, "dropout": 0.2, "activation": "sigmoid"}}
    if architecture == "unet":
        options["decoder_channels"] = (128, 64, 32, 16)
    reference, ours = _pair(architecture, "resnet18", **options)
    _assert_same_outputs(reference, ours, torch.randn(2, 1, 64, 64))


def test_unet_options_parity():
    options = {"decoder_attention_type": "scse", "decoder_interpolation": "bilinear",
               "decoder_use_norm": False, "classes": 2, "activation": "sigmoid"}
    reference, ours = _pair("unet", "resnet18", **options)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 96, 64))


def test_deeplab_options_parity():
    options = {"encoder_output_stride": 16, "decoder_atrous_rates": (6, 12, 18),
               "decoder_channels": 128, "decoder_aspp_separable": True}
    reference, ours = _pair("deeplabv3", "resnet34", **options)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))
    reference, ours = _pair("deeplabv3plus", "tu-resnet18", encoder_output_stride=8,
                            decoder_aspp_separable=False)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))
