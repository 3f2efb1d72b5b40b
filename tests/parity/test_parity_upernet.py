"""UPerNet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

Encoders: segcore's own "resnet34", "tu-resnet18" and the transformer-style
"tu-convnext_atto", which load SMP's encoder keys unchanged (see ``smp_pairs``).
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_upernet = pytest.importorskip("segcore_upernet")

import smp_pairs  # noqa: E402

ENCODERS = ["resnet34", "tu-resnet18"]
PAIRS = smp_pairs.Pairs(smp.UPerNet, segcore_upernet.UPerNet, "upernet")

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
                 "aux_params": {**smp_pairs.AUX, "activation": "softmax"}},
}

# tu-convnext_atto: transformer-style, its reduction-2 level is an empty 0-channel map in
# segcore (SMP builds a dummy there); UPerNet never reads that level
CONVNEXT_OPTION_SETS = {
    "defaults": {},
    "depth-4-no-norm": {"encoder_depth": 4, "decoder_use_norm": False, "decoder_channels": 64},
    "depth-3": {"encoder_depth": 3, "decoder_channels": 32},
    "aux-head": {"decoder_channels": 64, "aux_params": {"classes": 2, "dropout": 0.2}},
}


test_smp_checkpoint_loads_strictly_and_gives_the_same_output = PAIRS.parity_test(
    ENCODERS, OPTION_SETS)


@pytest.mark.parametrize("options", list(CONVNEXT_OPTION_SETS.values()),
                         ids=list(CONVNEXT_OPTION_SETS))
def test_transformer_style_encoder_convnext(options):
    _, ours = PAIRS.assert_parity("tu-convnext_atto", options, via_build=True)
    assert ours.encoder.out_channels[1] == 0  # the empty reduction-2 level


@pytest.mark.parametrize("upsampling", [1, 4, 8])
def test_upsampling_changes_the_head_as_in_smp(upsampling):
    shape = PAIRS.head_upsampling_shape("resnet34", upsampling, torch.randn(1, 3, 64, 96),
                                        decoder_channels=32)
    assert shape == (1, 3, 16 * upsampling, 24 * upsampling)


def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp("resnet34", torch.randn(1, 3, 64, 96), classes=2,
                                decoder_channels=64)


def test_trained_looking_checkpoint_gives_the_same_output():
    options = {"classes": 2, "decoder_channels": 64}
    reference, ours = PAIRS.pair("tu-resnet18", options, via_build=True, trained=True)
    smp_pairs.assert_same_outputs(reference, ours, torch.randn(2, 3, 96, 64))


def test_layernorm_has_smp_keys():
    """Same keys and shapes; the math differs on purpose: SMP's "layernorm" is an
    ``nn.LayerNorm`` over the last (width) axis of NCHW maps, which fails unless the width
    equals the channels (it always fails on the 1x1 pooling level), where segcore normalises
    over the channels."""
    options = {"classes": 1, "decoder_use_norm": "layernorm", "decoder_channels": 64}
    reference, ours = PAIRS.pair("resnet34", options)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert ours(x).shape == (1, 1, 64, 64)
        with pytest.raises(RuntimeError):
            reference(x)


def test_decoder_initialisation_and_math_match_smp():
    """Same seed, same layers in the same order: SMP's initialisation gives the same weights."""
    from segcore_upernet.decoder import UPerNetDecoder
    from segmentation_models_pytorch.decoders.upernet.decoder import (
        UPerNetDecoder as SMPDecoder,
    )

    channels = (3, 8, 16, 24, 32, 40)
    for depth, use_norm in ((5, "batchnorm"), (4, False), (3, {"type": "batchnorm",
                                                               "eps": 1e-3})):
        arguments = {"encoder_channels": channels[: depth + 1], "encoder_depth": depth,
                     "decoder_channels": 20, "use_norm": use_norm}
        reference, ours = smp_pairs.initialised_pair(lambda a=arguments: SMPDecoder(**a),
                                                     lambda a=arguments: UPerNetDecoder(**a))
        smp_pairs.trained_looking(ours)
        reference.load_state_dict(ours.state_dict())
        features = [torch.randn(2, c, 64 // 2**i, 96 // 2**i)
                    for i, c in enumerate(channels[: depth + 1])]
        smp_pairs.assert_same_function(reference, ours, features, atol=smp_pairs.TOLERANCE,
                                       rtol=smp_pairs.TOLERANCE)
