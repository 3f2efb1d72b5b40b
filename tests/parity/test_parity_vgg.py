"""Parity of segcore-vgg with SMP 0.6.0: SMP state dicts load strictly and give the same features.

SMP's first VGG feature is the full-resolution 64-channel ReLU output (``out_channels[0] ==
64``), which no decoder reads; segcore's contract puts the input there. Features 1 to 5 (and
``out_channels[1:]``) are compared exactly; whole Unet and FPN checkpoints give the same masks.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_vgg")

from segcore.errors import EncoderCapabilityError  # noqa: E402

NAMES = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
SIZES = [(64, 64), (64, 96)]


@pytest.fixture(scope="module")
def smp_encoders() -> dict[str, torch.nn.Module]:
    """SMP's encoders (3 input channels), built once per name: building one also initialises
    the torchvision classifier that SMP then deletes (over 100M parameters)."""
    return {}


def _smp_encoder(cache: dict[str, torch.nn.Module], name: str,
                 in_channels: int) -> torch.nn.Module:
    if name not in cache:
        torch.manual_seed(0)
        cache[name] = smp.encoders.get_encoder(name, weights=None).eval()
    if in_channels == 3:
        return cache[name]
    # What smp.encoders.get_encoder(name, in_channels=c, weights=None) does after building.
    reference = copy.deepcopy(cache[name])
    reference.set_in_channels(in_channels, pretrained=False)
    return reference


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(smp_encoders, name: str,
                                                     in_channels: int) -> None:
    reference = _smp_encoder(smp_encoders, name, in_channels)
    ours = segcore.get_encoder(name, in_channels=in_channels).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels[1:]) == tuple(reference.out_channels[1:])
    assert ours.out_channels[0] == in_channels and reference.out_channels[0] == 64
    assert ours.output_stride == reference.output_stride == 32
    torch.manual_seed(1)
    for size in SIZES:
        x = torch.randn(1, in_channels, *size)
        with torch.no_grad():
            expected = reference(x)
            actual = ours(x)
        assert len(actual) == len(expected) == 6
        assert actual[0] is x and expected[0].shape == (1, 64, *size)
        for level in range(1, 6):
            a, b = actual[level], expected[level]
            assert a.shape == b.shape, f"{size} feature {level}: {a.shape} vs {b.shape}"
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                       msg=lambda m, level=level: f"{name} feature {level}: {m}")


@pytest.mark.parametrize("depth", [2])
def test_shallow_encoders_agree(depth: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder("vgg13_bn", depth=depth, weights=None).eval()
    ours = segcore.get_encoder("vgg13_bn", depth=depth).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    assert len(actual) == len(expected) == depth + 1
    for a, b in zip(actual[1:], expected[1:], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_smp(name: str) -> None:
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, weights=None)
        ours = segcore.get_encoder(name)
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in reference.parameters())
    assert list(ours.state_dict()) == list(reference.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_dilation_is_refused_like_smp(smp_encoders, name: str) -> None:
    reference = copy.deepcopy(_smp_encoder(smp_encoders, name, 3))
    with pytest.raises(ValueError, match="dilated"):
        reference.make_dilated(16)  # what smp.encoders.get_encoder(output_stride=16) calls
    with pytest.raises(EncoderCapabilityError):
        segcore.get_encoder(name, output_stride=16)


@pytest.mark.parametrize("name", ["vgg16", "vgg19_bn"])  # and vgg11(_bn) below
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smp.Unet(name, encoder_weights=None, classes=2, decoder_channels=(16,) * 5)
    prefix = "encoder."
    encoder_state = {k[len(prefix):]: v for k, v in model.state_dict().items()
                     if k.startswith(prefix)}
    ours = segcore.get_encoder(name)
    ours.load_state_dict(encoder_state, strict=True)


@pytest.mark.parametrize("architecture, smp_class", [("unet", "Unet"), ("fpn", "FPN")])
@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn"])
def test_whole_smp_checkpoint_gives_the_same_masks(name: str, architecture: str,
                                                   smp_class: str) -> None:
    pytest.importorskip(f"segcore_{architecture}")
    torch.manual_seed(0)
    reference = getattr(smp, smp_class)(name, encoder_weights=None, classes=3,
                                        in_channels=1).eval()
    model = segcore.build(architecture, encoder=name, encoder_weights=None, classes=3,
                          in_channels=1).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-4)
