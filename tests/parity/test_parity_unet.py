"""Unet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

The segcore Unet gets SMP's own encoder through a test encoder spec, so the whole SMP
checkpoint (encoder, decoder, heads) loads into the segcore model unchanged.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_unet = pytest.importorskip("segcore_unet")

import smp_pairs  # noqa: E402

SMP_RESNET18 = "parity-smp-resnet18"
SMP_VGG11 = "vgg11-parity-smp"  # starts with "vgg": the Unet adds SMP's center block

SPECS = [
    smp_pairs.smp_encoder_spec(SMP_RESNET18, "resnet18", (3, 64, 64, 128, 256, 512),
                               family="ResNet", supports_dilation=True),
    smp_pairs.smp_encoder_spec(SMP_VGG11, "vgg11", (64, 128, 256, 512, 512, 512),
                               family="VGG", supports_dilation=False,
                               deepest_feature_pooled=True),
]
# SMP 0.6 still accepts the documented decoder_use_batchnorm (with a deprecation warning)
PAIRS = smp_pairs.Pairs(smp.Unet, segcore_unet.Unet, "unet", specs=SPECS,
                        smp_encoders={SMP_RESNET18: "resnet18", SMP_VGG11: "vgg11"},
                        quiet=["The usage of decoder_use_batchnorm is deprecated"])

SMALL = (64, 48, 32, 24, 16)

# (segcore encoder, SMP arguments, segcore arguments when they differ)
CASES = [
    (SMP_RESNET18, {}, None),
    (SMP_RESNET18, {"encoder_depth": 4, "decoder_channels": SMALL[:4]}, None),
    (SMP_RESNET18, {"encoder_depth": 3, "decoder_channels": SMALL[:3], "in_channels": 1}, None),
    (SMP_RESNET18, {"decoder_attention_type": "scse"}, None),
    (SMP_RESNET18, {"decoder_interpolation": "bilinear"}, None),
    (SMP_RESNET18, {"decoder_interpolation": "bicubic", "in_channels": 4}, None),
    (SMP_RESNET18, {"decoder_interpolation": "area"}, None),
    (SMP_RESNET18, {"decoder_interpolation": "nearest-exact"}, None),
    (SMP_RESNET18, {"decoder_use_norm": False}, {"decoder_use_batchnorm": False}),
    # (SMP cannot initialise a plain "instancenorm": it has no affine weight)
    (SMP_RESNET18, {"decoder_use_norm": {"type": "instancenorm", "affine": True}}, None),
    (SMP_RESNET18, {"decoder_use_norm": {"type": "batchnorm", "eps": 1e-3}}, None),
    (SMP_RESNET18, {"activation": "sigmoid",
                    "aux_params": {**smp_pairs.AUX}}, None),
    (SMP_VGG11, {"decoder_channels": SMALL}, None),
    (SMP_VGG11, {"decoder_channels": SMALL, "decoder_use_norm": False,
                 "decoder_attention_type": "scse"}, None),
]


@pytest.mark.parametrize("case", CASES,
                         ids=lambda case: f"{PAIRS.smp_encoders[case[0]]}-{case[1]}")
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(case):
    size = (63, 65)  # odd: every block interpolates to its skip's exact size
    _, model = PAIRS.assert_parity(*case, sizes=[size], batch=2, atol=1e-5)
    if not case[1].get("aux_params"):
        with torch.no_grad():
            assert model(torch.randn(2, case[1].get("in_channels", 3), *size)).shape == (
                2, 3, *size)


def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp(SMP_RESNET18, torch.randn(1, 3, 96, 80), classes=2,
                                decoder_attention_type="scse")


@pytest.mark.parametrize("value", [True, False])
def test_decoder_use_batchnorm_maps_like_smp(value):
    """SMP 0.6 still accepts the documented decoder_use_batchnorm (with a deprecation warning)."""
    PAIRS.pair(SMP_RESNET18, {"classes": 1, "decoder_use_batchnorm": value})


def test_same_initialisation_statistics():
    """Kaiming-uniform decoder convolutions and Xavier head, as SMP initialises them."""
    PAIRS.assert_same_initialisation(SMP_RESNET18)
