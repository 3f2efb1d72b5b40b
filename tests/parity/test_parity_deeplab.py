"""DeepLabV3 / DeepLabV3+ against SMP 0.6.0: same state-dict keys, strict loading, same outputs.

The segcore models get SMP's own resnet18 encoder through a test encoder spec, so the whole
SMP checkpoint (encoder, decoder, heads) loads into the segcore model unchanged.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_deeplab = pytest.importorskip("segcore_deeplab")

import smp_pairs  # noqa: E402

SMP_RESNET18 = "parity-smp-resnet18"
SMP_RESNET18_SPEC = smp_pairs.smp_encoder_spec(SMP_RESNET18, "resnet18",
                                               (3, 64, 64, 128, 256, 512), family="ResNet",
                                               supports_dilation=True)
PAIRS = {
    name: smp_pairs.Pairs(getattr(smp, name), getattr(segcore_deeplab, name), name.lower(),
                          defaults={"classes": 3, "decoder_channels": 32},
                          specs=[SMP_RESNET18_SPEC], smp_encoders={SMP_RESNET18: "resnet18"})
    for name in ("DeepLabV3", "DeepLabV3Plus")
}

CASES = [
    ("DeepLabV3", {}),
    ("DeepLabV3", {"encoder_output_stride": 16, "decoder_atrous_rates": (6, 12, 18),
                   "decoder_aspp_separable": True, "decoder_aspp_dropout": 0.2}),
    ("DeepLabV3", {"encoder_depth": 4, "encoder_output_stride": 16}),
    ("DeepLabV3", {"encoder_depth": 3, "in_channels": 1}),
    ("DeepLabV3", {"upsampling": 4, "activation": "sigmoid"}),
    ("DeepLabV3Plus", {}),
    ("DeepLabV3Plus", {"encoder_output_stride": 8, "decoder_aspp_separable": False}),
    ("DeepLabV3Plus", {"encoder_depth": 4}),
    ("DeepLabV3Plus", {"encoder_depth": 3, "decoder_atrous_rates": (1, 2, 3)}),
    ("DeepLabV3Plus", {"encoder_depth": 4, "encoder_output_stride": 8, "in_channels": 4,
                       "aux_params": {"classes": 3, "pooling": "max", "dropout": 0.1}}),
]


@pytest.mark.parametrize(("class_name", "options"), CASES)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(class_name, options):
    PAIRS[class_name].assert_parity(SMP_RESNET18, options, sizes=[(64, 64)], batch=2,
                                    rtol=1e-5, atol=1e-5)


def test_decoders_match_smp_with_tiny_channels():
    from segcore_deeplab.decoder import DeepLabV3Decoder, DeepLabV3PlusDecoder
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import (
        DeepLabV3Decoder as SMPV3Decoder,
    )
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import (
        DeepLabV3PlusDecoder as SMPV3PlusDecoder,
    )

    channels = (3, 8, 16, 24, 32, 40)
    features = [torch.randn(2, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate(channels[:4])]
    features += [torch.randn(2, 32, 4, 4), torch.randn(2, 40, 4, 4)]
    torch.manual_seed(1)
    for reference, ours in (
        (SMPV3PlusDecoder(channels, 5, 24, (2, 4, 6), 16, True, 0.5),
         DeepLabV3PlusDecoder(channels, 5, 24, (2, 4, 6), 16, True, 0.5)),
        (SMPV3Decoder(40, 24, (2, 4, 6), False, 0.5),
         DeepLabV3Decoder(40, 24, (2, 4, 6), False, 0.5)),
    ):
        ours.load_state_dict(reference.state_dict(), strict=True)
        smp_pairs.assert_same_function(reference, ours, features)


def test_old_smp_sequential_decoder_keys_load():
    reference, model = PAIRS["DeepLabV3"].pair(SMP_RESNET18)
    old_layout = {}
    for key, value in reference.state_dict().items():
        for new, old in (("decoder.aspp.", "decoder.0."), ("decoder.conv.", "decoder.1."),
                         ("decoder.bn.", "decoder.2.")):
            if key.startswith(new):
                key = old + key[len(new):]
        old_layout[key] = value
    assert any(k.startswith("decoder.0.") for k in old_layout)
    model.load_state_dict(old_layout, strict=True)
    smp_pairs.assert_same_function(reference, model, torch.randn(1, 3, 64, 64))
