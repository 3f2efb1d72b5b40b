"""DeepLabV3 / DeepLabV3+ against SMP 0.6.0: same state-dict keys, strict loading, same outputs.

The segcore models get SMP's own resnet18 encoder through a test encoder spec, so the whole
SMP checkpoint (encoder, decoder, heads) loads into the segcore model unchanged.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_deeplab = pytest.importorskip("segcore_deeplab")

from segcore import testing  # noqa: E402
from segcore.specs import EncoderSpec  # noqa: E402

SMP_RESNET18 = "parity-smp-resnet18"


def _smp_resnet18(name: str, in_channels: int, depth: int, output_stride: int,
                  weights: object = None) -> torch.nn.Module:
    return smp.encoders.get_encoder("resnet18", in_channels=in_channels, depth=depth,
                                    weights=None, output_stride=output_stride)


SMP_RESNET18_SPEC = EncoderSpec(
    name=SMP_RESNET18, family="ResNet", factory=_smp_resnet18,
    out_channels=(3, 64, 64, 128, 256, 512), native_setup=True, supports_dilation=True,
)

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


def _pair(class_name: str, options: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    arguments = {"classes": 3, "decoder_channels": 32, **options}
    torch.manual_seed(0)
    reference = getattr(smp, class_name)(encoder_name="resnet18", encoder_weights=None,
                                         **arguments)
    model = getattr(segcore_deeplab, class_name)(encoder_name=SMP_RESNET18,
                                                 encoder_weights=None, **arguments)
    return reference.eval(), model.eval()


@pytest.mark.parametrize(("class_name", "options"), CASES)
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(class_name, options):
    with testing.specs_installed(encoders=[SMP_RESNET18_SPEC]):
        reference, model = _pair(class_name, options)
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, options.get("in_channels", 3), 64, 64)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple)
        for a, e in zip(actual, expected):
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
    else:
        assert actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


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
    reference = SMPV3PlusDecoder(channels, 5, 24, (2, 4, 6), 16, True, 0.5).eval()
    ours = DeepLabV3PlusDecoder(channels, 5, 24, (2, 4, 6), 16, True, 0.5).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(features), reference(features))

    reference = SMPV3Decoder(40, 24, (2, 4, 6), False, 0.5).eval()
    ours = DeepLabV3Decoder(40, 24, (2, 4, 6), False, 0.5).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(features), reference(features))


def test_old_smp_sequential_decoder_keys_load():
    with testing.specs_installed(encoders=[SMP_RESNET18_SPEC]):
        reference, model = _pair("DeepLabV3", {})
    old_layout = {}
    for key, value in reference.state_dict().items():
        for new, old in (("decoder.aspp.", "decoder.0."), ("decoder.conv.", "decoder.1."),
                         ("decoder.bn.", "decoder.2.")):
            if key.startswith(new):
                key = old + key[len(new):]
        old_layout[key] = value
    assert any(k.startswith("decoder.0.") for k in old_layout)
    model.load_state_dict(old_layout, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
