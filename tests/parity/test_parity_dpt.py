"""DPT against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

DPT builds its own encoder from the whole timm model (SMP's ``TimmViTEncoder`` layout,
``encoder.model.*``), so the SMP checkpoint (encoder, decoder, heads) loads unchanged. SMP's
DPT only takes ``tu-`` timm models: a small ViT (12 blocks of 48 channels, 64x64 images) and
timm's ResNet-18 (no prefix tokens) are compared; segcore's own "resnet34" is refused by both.
"""

from __future__ import annotations

import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_dpt = pytest.importorskip("segcore_dpt")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import segcore  # noqa: E402
import segcore.errors  # noqa: E402

TOLERANCE = 1e-4
SIZES = [(64, 64), (96, 64)]  # multiples of 32, as SMP's decoder needs
VIT = "tu-vit_tiny_patch16_224"
# SMP passes its own `depth` to the encoder, so the ViT keeps its 12 blocks; narrow and 64x64
VIT_OPTIONS = {"img_size": 64, "embed_dim": 48, "num_heads": 3, "dynamic_img_size": True}
ENCODERS = {VIT: VIT_OPTIONS, "tu-resnet18": {}}

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
                      "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3,
                                     "activation": "softmax"}},
}


def _build_pair(encoder: str, via_build: bool = False, **options):
    options = {"classes": 3, **ENCODERS.get(encoder, {}), **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "cat"/"add" without prefix tokens warn in both
        torch.manual_seed(0)
        reference = smp.DPT(encoder_name=encoder, encoder_weights=None, **options).eval()
        if via_build:
            ours = segcore.build("dpt", encoder=encoder, **options)
        else:
            ours = segcore_dpt.DPT(encoder_name=encoder, encoder_weights=None, **options)
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in reference.named_modules()]
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


# SMP's aux "softmax" is nn.Softmax() without dim (same result on (N, classes) labels)
@pytest.mark.filterwarnings("ignore:Implicit dimension choice for softmax")
@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(encoder, options):
    reference, ours = _build_pair(encoder, via_build=encoder == VIT, **options)
    channels = options.get("in_channels", 3)
    for size in SIZES:
        torch.manual_seed(1)
        _assert_same_outputs(reference, ours, torch.randn(1, channels, *size))


def test_fixed_size_vit_matches_smp_at_its_size():
    options = {**VIT_OPTIONS, "dynamic_img_size": False, "decoder_readout": "cat",
               "decoder_intermediate_channels": (16, 32, 64, 64)}
    reference, ours = _build_pair(VIT, **options)
    assert ours.encoder.fixed_input_size == (64, 64)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 64))


def test_same_seed_builds_the_same_model():
    """Same creation order and initialisation: no state dict needed for equal weights."""
    options = {**VIT_OPTIONS, "classes": 2, "decoder_intermediate_channels": (16, 32, 64, 64),
               "decoder_fusion_channels": 32}
    torch.manual_seed(7)
    reference = smp.DPT(VIT, encoder_weights=None, **options)
    torch.manual_seed(7)
    ours = segcore_dpt.DPT(VIT, encoder_weights=None, **options)
    expected, actual = reference.state_dict(), ours.state_dict()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], msg=key)


def test_segcore_checkpoint_loads_into_smp():
    options = {**VIT_OPTIONS, "classes": 2, "decoder_readout": "add",
               "decoder_intermediate_channels": (16, 32, 64, 64), "decoder_fusion_channels": 32}
    torch.manual_seed(1)
    ours = segcore_dpt.DPT(VIT, encoder_weights=None, **options).eval()
    with torch.no_grad():  # trained-looking norms, so the comparison means something
        for name, tensor in ours.decoder.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor).abs() * 0.2
                             + (1 if name.endswith(("weight", "running_var")) else 0))
    reference = smp.DPT(VIT, encoder_weights=None, **options).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    _assert_same_outputs(reference, ours, torch.randn(1, 3, 64, 96))


def test_decoder_and_head_match_smp():
    from segcore_dpt.decoder import DPTDecoder, DPTSegmentationHead
    from segmentation_models_pytorch.base import initialization
    from segmentation_models_pytorch.decoders.dpt.decoder import DPTDecoder as SMPDecoder
    from segmentation_models_pytorch.decoders.dpt.decoder import (
        DPTSegmentationHead as SMPHead,
    )

    from segcore.nn import initialize_decoder, initialize_head

    arguments = {"encoder_out_channels": (24, 24, 24), "encoder_output_strides": (8, 8, 8),
                 "encoder_has_prefix_tokens": True, "readout": "cat",
                 "intermediate_channels": (8, 16, 24), "fusion_channels": 16}
    torch.manual_seed(3)
    reference = SMPDecoder(**arguments)
    reference_head = SMPHead(16, 3, activation="tanh")
    initialization.initialize_decoder(reference)
    initialization.initialize_head(reference_head)
    torch.manual_seed(3)
    ours = DPTDecoder(**arguments)
    head = DPTSegmentationHead(16, 3, activation="tanh")
    initialize_decoder(ours)
    initialize_head(head)
    for mine, theirs in ((ours, reference), (head, reference_head)):
        expected, actual = theirs.state_dict(), mine.state_dict()
        assert list(actual) == list(expected)
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], msg=key)
    features = [torch.randn(2, 24, 8, 12) for _ in range(3)]
    tokens = [torch.randn(2, 2, 24) for _ in range(3)]
    with torch.no_grad():
        torch.testing.assert_close(head.eval()(ours.eval()(features, tokens)),
                                   reference_head.eval()(reference.eval()(features, tokens)))


@pytest.mark.parametrize("encoder", ["resnet34", "mit_b0"])
def test_non_timm_encoders_are_refused_like_smp(encoder):
    with pytest.raises(ValueError, match="tu-"):
        smp.DPT(encoder, encoder_weights=None)
    with pytest.raises(segcore.errors.EncoderCapabilityError, match="tu-"):
        segcore_dpt.DPT(encoder, encoder_weights=None)


def test_smp_needs_multiples_of_32_not_of_the_patch_size():
    """SMP checks multiples of the patch size (16) but its decoder needs 32: 48x48 fails
    there; segcore pads it to 64x64 and crops the mask back."""
    reference, ours = _build_pair(VIT, decoder_intermediate_channels=(16, 32, 64, 64))
    assert reference.encoder.output_stride == 16
    assert ours.input_divisor() == 32
    x = torch.randn(1, 3, 48, 48)
    with pytest.raises(RuntimeError), torch.no_grad():
        reference(x)
    with torch.no_grad():
        assert ours(x).shape == (1, 3, 48, 48)


# -- random sizes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_pair():
    return _build_pair(VIT, classes=2, decoder_intermediate_channels=(16, 32, 64, 64),
                       decoder_fusion_channels=32)


@settings(max_examples=10, deadline=None)
@given(height=st.integers(1, 5).map(lambda k: 32 * k),
       width=st.integers(1, 5).map(lambda k: 32 * k))
def test_sizes_divisible_by_32_give_smp_output(default_pair, height, width):
    reference, ours = default_pair
    _assert_same_outputs(reference, ours, torch.randn(1, 3, height, width))


@settings(max_examples=10, deadline=None)
@given(height=st.integers(32, 160), width=st.integers(32, 160))
def test_any_size_gives_a_mask_of_that_size(default_pair, height, width):
    _, ours = default_pair
    if height % 32 == 0 and width % 32 == 0:
        height += 1  # the test above covers the sizes SMP accepts
    with torch.no_grad():
        mask = ours(torch.randn(1, 3, height, width))
    assert mask.shape == (1, 2, height, width)
    assert torch.isfinite(mask).all()
