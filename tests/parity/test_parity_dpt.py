"""DPT against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

DPT builds its own encoder from the whole timm model (SMP's ``TimmViTEncoder`` layout,
``encoder.model.*``), so the SMP checkpoint (encoder, decoder, heads) loads unchanged. SMP's
DPT only takes ``tu-`` timm models: a small ViT (12 blocks of 48 channels, 64x64 images) and
timm's ResNet-18 (no prefix tokens) are compared; segcore's own "resnet34" is refused by both.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_dpt = pytest.importorskip("segcore_dpt")

import smp_pairs  # noqa: E402

import segcore  # noqa: E402
import segcore.errors  # noqa: E402

VIT = "tu-vit_tiny_patch16_224"
# SMP passes its own `depth` to the encoder, so the ViT keeps its 12 blocks; narrow and 64x64
VIT_OPTIONS = {"img_size": 64, "embed_dim": 48, "num_heads": 3, "dynamic_img_size": True}
ENCODERS = {VIT: VIT_OPTIONS, "tu-resnet18": {}}
# "cat"/"add" without prefix tokens warn in both
PAIRS = smp_pairs.Pairs(smp.DPT, segcore_dpt.DPT, "dpt", quiet=[""])

OPTION_SETS = {
    "defaults": {},
    "ignore-small": {"decoder_readout": "ignore",
                     "decoder_intermediate_channels": (32, 64, 96, 128),
                     "decoder_fusion_channels": 64},
    "add-depth-3-indices": {"decoder_readout": "add", "encoder_depth": 3,
                            "encoder_output_indices": [0, 2, 4],
                            "decoder_intermediate_channels": (16, 32, 64),
                            "decoder_fusion_channels": 32},
    "aux-head-gray": {"in_channels": 1, "activation": "sigmoid",
                      "decoder_intermediate_channels": (16, 32, 64, 64),
                      "aux_params": {**smp_pairs.AUX, "activation": "softmax"}},
}


def _assert_same_modules(reference, ours):
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in reference.named_modules()]


@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, options):
    _assert_same_modules(*PAIRS.assert_parity(encoder, {**ENCODERS[encoder], **options},
                                              via_build=encoder == VIT))


def test_fixed_size_vit_matches_smp_at_its_size():
    options = {**VIT_OPTIONS, "dynamic_img_size": False, "decoder_readout": "cat",
               "decoder_intermediate_channels": (16, 32, 64, 64)}
    reference, ours = PAIRS.assert_parity(VIT, options, sizes=[(64, 64)])
    _assert_same_modules(reference, ours)
    assert ours.encoder.fixed_input_size == (64, 64)


def test_same_seed_builds_the_same_model():
    """Same creation order and initialisation: no state dict needed for equal weights."""
    options = {**VIT_OPTIONS, "classes": 2, "decoder_intermediate_channels": (16, 32, 64, 64),
               "decoder_fusion_channels": 32}
    torch.manual_seed(7)
    reference = PAIRS.smp(VIT, **options)
    torch.manual_seed(7)
    smp_pairs.assert_same_state(PAIRS.ours(VIT, **options), reference)


def test_segcore_checkpoint_loads_into_smp():
    PAIRS.assert_loads_into_smp(VIT, torch.randn(1, 3, 64, 96), classes=2,
                                decoder_readout="add", decoder_fusion_channels=32,
                                decoder_intermediate_channels=(16, 32, 64, 64), **VIT_OPTIONS)


def test_decoder_and_head_match_smp():
    from segcore_dpt.decoder import DPTDecoder, DPTSegmentationHead
    from segmentation_models_pytorch.decoders.dpt.decoder import DPTDecoder as SMPDecoder
    from segmentation_models_pytorch.decoders.dpt.decoder import (
        DPTSegmentationHead as SMPHead,
    )

    arguments = {"encoder_out_channels": (24, 24, 24), "encoder_output_strides": (8, 8, 8),
                 "encoder_has_prefix_tokens": True, "readout": "cat",
                 "intermediate_channels": (8, 16, 24), "fusion_channels": 16}
    reference, ours = smp_pairs.initialised_pair(lambda: SMPDecoder(**arguments),
                                                 lambda: DPTDecoder(**arguments))
    reference_head, head = smp_pairs.initialised_pair(
        lambda: SMPHead(16, 3, activation="tanh"),
        lambda: DPTSegmentationHead(16, 3, activation="tanh"), head=True)
    features = [torch.randn(2, 24, 8, 12) for _ in range(3)]
    tokens = [torch.randn(2, 2, 24) for _ in range(3)]
    smp_pairs.assert_same_function(_DecoderAndHead(reference, reference_head),
                                   _DecoderAndHead(ours, head), features, tokens)


class _DecoderAndHead(torch.nn.Module):
    """DPT's decoder takes features and prefix tokens; the head its output."""

    def __init__(self, decoder, head):
        super().__init__()
        self.decoder, self.head = decoder, head

    def forward(self, features, tokens):
        return self.head(self.decoder(features, tokens))


@pytest.mark.parametrize("encoder", ["resnet34", "mit_b0"])
def test_non_timm_encoders_are_refused_like_smp(encoder):
    with pytest.raises(ValueError, match="tu-"):
        smp.DPT(encoder, encoder_weights=None)
    with pytest.raises(segcore.errors.EncoderCapabilityError, match="tu-"):
        segcore_dpt.DPT(encoder, encoder_weights=None)


def test_smp_needs_multiples_of_32_not_of_the_patch_size():
    """SMP checks multiples of the patch size (16) but its decoder needs 32: 48x48 fails
    there; segcore pads it to 64x64 and crops the mask back."""
    reference, ours = PAIRS.pair(VIT, {**VIT_OPTIONS,
                                       "decoder_intermediate_channels": (16, 32, 64, 64)})
    _assert_same_modules(reference, ours)
    assert reference.encoder.output_stride == 16
    assert ours.input_divisor() == 32
    x = torch.randn(1, 3, 48, 48)
    with pytest.raises(RuntimeError), torch.no_grad():
        reference(x)
    with torch.no_grad():
        assert ours(x).shape == (1, 3, 48, 48)
