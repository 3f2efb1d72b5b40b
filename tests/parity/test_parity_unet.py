"""Unet against SMP 0.6.0: same state-dict keys, strict loading both ways, same outputs.

The segcore Unet gets SMP's own encoder through a test encoder spec, so the whole SMP
checkpoint (encoder, decoder, heads) loads into the segcore model unchanged.
"""

from __future__ import annotations

import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore_unet = pytest.importorskip("segcore_unet")

from segcore import testing  # noqa: E402
from segcore.specs import EncoderSpec  # noqa: E402

SMP_RESNET18 = "parity-smp-resnet18"
SMP_VGG11 = "vgg11-parity-smp"  # starts with "vgg": the Unet adds SMP's center block


def _smp_encoder(smp_name: str):
    def factory(name: str, in_channels: int, depth: int, output_stride: int,
                weights: object = None) -> torch.nn.Module:
        return smp.encoders.get_encoder(smp_name, in_channels=in_channels, depth=depth,
                                        weights=None, output_stride=output_stride)

    return factory


SPECS = [
    # SMP's own encoders build input channels and dilation in: native_setup
    EncoderSpec(name=SMP_RESNET18, family="ResNet", factory=_smp_encoder("resnet18"),
                out_channels=(3, 64, 64, 128, 256, 512), native_setup=True,
                supports_dilation=True),
    EncoderSpec(name=SMP_VGG11, family="VGG", factory=_smp_encoder("vgg11"),
                out_channels=(64, 128, 256, 512, 512, 512), supports_dilation=False,
                native_setup=True, deepest_feature_pooled=True),
]

SMALL = (64, 48, 32, 24, 16)

# (SMP encoder, segcore encoder, SMP arguments, segcore arguments when they differ)
CASES = [
    ("resnet18", SMP_RESNET18, {}, None),
    ("resnet18", SMP_RESNET18, {"encoder_depth": 4, "decoder_channels": SMALL[:4]}, None),
    ("resnet18", SMP_RESNET18, {"encoder_depth": 3, "decoder_channels": SMALL[:3],
                                "in_channels": 1}, None),
    ("resnet18", SMP_RESNET18, {"decoder_attention_type": "scse"}, None),
    ("resnet18", SMP_RESNET18, {"decoder_interpolation": "bilinear"}, None),
    ("resnet18", SMP_RESNET18, {"decoder_interpolation": "bicubic", "in_channels": 4}, None),
    ("resnet18", SMP_RESNET18, {"decoder_interpolation": "area"}, None),
    ("resnet18", SMP_RESNET18, {"decoder_interpolation": "nearest-exact"}, None),
    ("resnet18", SMP_RESNET18, {"decoder_use_norm": False},
     {"decoder_use_batchnorm": False}),
    # (SMP cannot initialise a plain "instancenorm": it has no affine weight)
    ("resnet18", SMP_RESNET18, {"decoder_use_norm": {"type": "instancenorm", "affine": True}},
     None),
    ("resnet18", SMP_RESNET18, {"decoder_use_norm": {"type": "batchnorm", "eps": 1e-3}}, None),
    ("resnet18", SMP_RESNET18, {"activation": "sigmoid",
                                "aux_params": {"classes": 4, "pooling": "max", "dropout": 0.3}},
     None),
    ("vgg11", SMP_VGG11, {"decoder_channels": SMALL}, None),
    ("vgg11", SMP_VGG11, {"decoder_channels": SMALL, "decoder_use_norm": False,
                          "decoder_attention_type": "scse"}, None),
]


def _pair(smp_encoder, encoder, smp_arguments, segcore_arguments):
    smp_arguments = {"classes": 3, **smp_arguments}
    segcore_arguments = {"classes": 3, **(segcore_arguments or smp_arguments)}
    torch.manual_seed(0)
    reference = smp.Unet(encoder_name=smp_encoder, encoder_weights=None, **smp_arguments)
    model = segcore_unet.Unet(encoder_name=encoder, encoder_weights=None, **segcore_arguments)
    return reference.eval(), model.eval()


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]}-{case[2]}")
def test_smp_checkpoint_loads_strictly_and_gives_the_same_output(case):
    smp_encoder, encoder, smp_arguments, segcore_arguments = case
    with testing.specs_installed(encoders=SPECS):
        reference, model = _pair(smp_encoder, encoder, smp_arguments, segcore_arguments)
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    channels = smp_arguments.get("in_channels", 3)
    size = (63, 65)  # odd: every block interpolates to its skip's exact size
    x = torch.randn(2, channels, *size)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    if isinstance(expected, tuple):
        for a, e in zip(actual, expected):
            torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)
    else:
        assert actual.shape == (2, 3, *size)
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_segcore_checkpoint_loads_into_smp():
    with testing.specs_installed(encoders=SPECS):
        torch.manual_seed(1)
        model = segcore_unet.Unet(encoder_name=SMP_RESNET18, encoder_weights=None, classes=2,
                                  decoder_attention_type="scse").eval()
    reference = smp.Unet("resnet18", encoder_weights=None, classes=2,
                         decoder_attention_type="scse").eval()
    reference.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 96, 80)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_decoder_use_batchnorm_maps_like_smp():
    """SMP 0.6 still accepts the documented decoder_use_batchnorm (with a deprecation warning)."""
    for value in (True, False):
        with testing.specs_installed(encoders=SPECS), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            reference = smp.Unet("resnet18", encoder_weights=None, decoder_use_batchnorm=value)
            model = segcore_unet.Unet(SMP_RESNET18, encoder_weights=None,
                                      decoder_use_batchnorm=value)
        assert list(model.state_dict()) == list(reference.state_dict())


def test_same_initialisation_statistics():
    """Kaiming-uniform decoder convolutions and Xavier head, as SMP initialises them."""
    with testing.specs_installed(encoders=SPECS):
        torch.manual_seed(0)
        model = segcore_unet.Unet(SMP_RESNET18, encoder_weights=None, classes=3)
    torch.manual_seed(0)
    reference = smp.Unet("resnet18", encoder_weights=None, classes=3)
    ours, theirs = model.state_dict(), reference.state_dict()
    for key in ours:
        if key.startswith(("decoder.", "segmentation_head.")) and ours[key].is_floating_point():
            torch.testing.assert_close(ours[key], theirs[key], msg=key)
