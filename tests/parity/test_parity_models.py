"""SMP 0.6.0 checkpoints load into segcore models (strict) and give the same outputs.

Run with ``nox -s parity`` (SMP is installed only in that session's environment).
"""

from __future__ import annotations

import pytest

smp = pytest.importorskip("segmentation_models_pytorch")

import smp_pairs  # noqa: E402

ARCHITECTURES = {"unet": "Unet", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus"}
ENCODERS = ["resnet18", "resnet34", "resnext50_32x4d", "tu-resnet18"]
# segcore.build for every architecture, with only the options given
PAIRS = {architecture: smp_pairs.Pairs(getattr(smp, class_name), None, architecture,
                                       defaults={})
         for architecture, class_name in ARCHITECTURES.items()}


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_checkpoint_loads_strict_and_outputs_agree(architecture, encoder):
    PAIRS[architecture].assert_parity(encoder, {"classes": 3}, sizes=[(64, 64)], batch=2)


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_parity_with_aux_head_gray_input_and_shallower_depth(architecture):
    options = {"in_channels": 1, "classes": 5, "encoder_depth": 4,
               "aux_params": {"classes": 4, "dropout": 0.2, "activation": "sigmoid"}}
    if architecture == "unet":
        options["decoder_channels"] = (128, 64, 32, 16)
    PAIRS[architecture].assert_parity("resnet18", options, sizes=[(64, 64)], batch=2)


def test_unet_options_parity():
    options = {"decoder_attention_type": "scse", "decoder_interpolation": "bilinear",
               "decoder_use_norm": False, "classes": 2, "activation": "sigmoid"}
    PAIRS["unet"].assert_parity("resnet18", options, sizes=[(96, 64)])


def test_deeplab_options_parity():
    options = {"encoder_output_stride": 16, "decoder_atrous_rates": (6, 12, 18),
               "decoder_channels": 128, "decoder_aspp_separable": True}
    PAIRS["deeplabv3"].assert_parity("resnet34", options, sizes=[(64, 64)])
    PAIRS["deeplabv3plus"].assert_parity("tu-resnet18", {"encoder_output_stride": 8,
                                                         "decoder_aspp_separable": False},
                                         sizes=[(64, 64)])
