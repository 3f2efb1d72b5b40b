"""Linknet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Both models use their library's own encoder of the same name (segcore's resnet34 and
tu-resnet18 load SMP's encoder keys unchanged), so the whole SMP checkpoint loads into the
segcore model.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_linknet = pytest.importorskip("segcore_linknet")

import smp_pairs  # noqa: E402

import segcore  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
# SMP 0.6 deprecates the documented decoder_use_batchnorm; segcore keeps it
PAIRS = smp_pairs.Pairs(smp.Linknet, segcore.Linknet, "linknet", defaults={},
                        quiet=["The usage of decoder_use_batchnorm is deprecated"])

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
                  "aux_params": {**smp_pairs.AUX, "activation": "softmax"}}, None),
]


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize(("name", "smp_arguments", "segcore_arguments"), OPTION_SETS,
                         ids=[case[0] for case in OPTION_SETS])
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(
    encoder, name, smp_arguments, segcore_arguments
):
    _, ours = PAIRS.assert_parity(encoder, smp_arguments, segcore_arguments)
    channels = smp_arguments.get("in_channels", 3)
    mask = ours.predict(torch.randn(1, channels, 64, 64))
    classes = smp_arguments.get("classes", 1)
    assert (mask[0] if isinstance(mask, tuple) else mask).shape == (1, classes, 64, 64)


def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp("resnet34", torch.randn(1, 3, 64, 96), classes=2,
                                decoder_use_batchnorm=False)


def test_transformer_style_encoder_with_a_placeholder_level():
    """tu-convnext has no reduction-2 features: both libraries skip that sum the same way."""
    _, ours = PAIRS.assert_parity("tu-convnext_atto", {"classes": 2}, sizes=[(64, 64)])
    assert ours.encoder.out_channels[1] == 0


def test_same_decoder_module_tree_as_smp():
    reference, ours = PAIRS.pair("resnet34")
    smp_modules = {name: type(m).__name__ for name, m in reference.decoder.named_modules()}
    our_modules = {name: type(m).__name__ for name, m in ours.decoder.named_modules()}
    assert our_modules.keys() == smp_modules.keys()
    for name, kind in smp_modules.items():  # the same layer types where SMP uses torch's
        if kind in ("Conv2d", "ConvTranspose2d", "BatchNorm2d", "ReLU", "Identity"):
            assert our_modules[name] == kind, name
