"""tu- encoders follow the segcore encoder contract and return timm's own features."""

from __future__ import annotations

import pytest
import timm
import torch

import segcore
from segcore import testing
from segcore.factory import get_encoder_spec


def test_resnet18_follows_the_contract_with_dilation() -> None:
    assert get_encoder_spec("tu-resnet18").supports_dilation
    testing.check_encoder("tu-resnet18", depths=(3, 4, 5), in_channels=(1, 3, 4), dilation=True)


def test_transformer_style_model_follows_the_contract() -> None:
    # test_convnext: a tiny ConvNeXt whose features start at reduction 4 (and that timm dilates).
    testing.check_encoder("tu-test_convnext", depths=(1, 2, 3, 5), in_channels=(1, 3, 4))


def test_channels_last_model_follows_the_contract() -> None:
    # test_mambaout: a tiny MambaOut, features at reductions 4..32 in NHWC, no dilation.
    spec = get_encoder_spec("tu-test_mambaout")
    assert not spec.supports_dilation
    testing.check_encoder("tu-test_mambaout", depths=(2, 5), in_channels=(1, 3))


def _timm_features(model_name: str, encoder: torch.nn.Module, depth: int, x: torch.Tensor,
                   **options) -> list[torch.Tensor]:
    """timm's own feature extractor with the encoder's weights, run on ``x``."""
    reference = timm.create_model(model_name, features_only=True, **options).eval()
    reference.load_state_dict(encoder.model.state_dict(), strict=True)
    with torch.no_grad():
        return list(reference(x))


def test_traditional_features_are_timms_features_after_the_input() -> None:
    encoder = segcore.get_encoder("tu-resnet18", depth=4).eval()
    assert encoder.out_channels == (3, 64, 64, 128, 256)
    x = torch.randn(2, 3, 64, 64)
    expected = _timm_features("resnet18", encoder, 4, x, out_indices=(0, 1, 2, 3))
    with torch.no_grad():
        features = encoder(x)
    assert features[0] is x
    assert len(features) == 5
    for actual, wanted in zip(features[1:], expected):
        torch.testing.assert_close(actual, wanted)


def test_transformer_style_gets_an_empty_reduction_2_level() -> None:
    encoder = segcore.get_encoder("tu-test_convnext").eval()
    assert encoder.out_channels == (3, 0, 24, 32, 48, 64)
    x = torch.randn(2, 3, 64, 64)
    expected = _timm_features("test_convnext", encoder, 5, x)
    with torch.no_grad():
        features = encoder(x)
    assert tuple(features[1].shape) == (2, 0, 32, 32)
    assert [tuple(f.shape[2:]) for f in features[2:]] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    for actual, wanted in zip(features[2:], expected):
        torch.testing.assert_close(actual, wanted)


def test_channels_last_features_are_permuted_to_nchw() -> None:
    encoder = segcore.get_encoder("tu-test_mambaout").eval()
    x = torch.randn(2, 3, 64, 64)
    expected = _timm_features("test_mambaout", encoder, 5, x)
    assert tuple(expected[0].shape) == (2, 16, 16, 16)  # timm gives N, H, W, C: here H == W
    assert tuple(expected[-1].shape) == (2, 2, 2, 64)
    with torch.no_grad():
        features = encoder(x)
    assert tuple(features[-1].shape) == (2, 64, 2, 2)
    for actual, wanted in zip(features[2:], expected):
        torch.testing.assert_close(actual, wanted.permute(0, 3, 1, 2))


def test_vgg_style_model_drops_the_reduction_1_level() -> None:
    # vgg11 features: reductions 1, 2, 4, 8, 16, 32; the input takes the reduction-1 place.
    spec = get_encoder_spec("tu-vgg11")
    assert spec.out_channels == (3, 128, 256, 512, 512, 512)
    for depth in (1, 3):
        encoder = segcore.get_encoder("tu-vgg11", depth=depth, in_channels=1).eval()
        x = torch.randn(2, 1, 64, 64)
        with torch.no_grad():
            features = testing.check_encoder_features(encoder, x, depth)
        assert encoder.out_channels == (1, 128, 256, 512)[: depth + 1]
        assert features[0] is x


def test_vgg_style_model_with_dilation() -> None:
    # darknet17 is VGG-style (reduction 1 first) and timm can dilate it.
    spec = get_encoder_spec("tu-darknet17")
    assert spec.supports_dilation
    encoder = segcore.get_encoder("tu-darknet17", depth=5, output_stride=8).eval()
    assert encoder.output_stride == 8
    with torch.no_grad():
        testing.check_encoder_features(encoder, torch.randn(1, 3, 64, 64), 5, output_stride=8)


@pytest.mark.parametrize("depth, output_stride, expected", [(5, 16, 16), (5, 8, 8), (3, 16, 8),
                                                            (4, 16, 16)])
def test_output_stride_is_capped_by_depth(depth: int, output_stride: int, expected: int) -> None:
    encoder = segcore.get_encoder("tu-test_resnet", depth=depth, output_stride=output_stride)
    assert encoder.output_stride == expected
    with torch.no_grad():
        features = encoder.eval()(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 64 // expected


def test_in_channels_are_passed_to_timm() -> None:
    for channels in (1, 4):
        encoder = segcore.get_encoder("tu-resnet18", in_channels=channels)
        assert encoder.in_channels == channels
        assert encoder.out_channels[0] == channels
        assert encoder.model.conv1.weight.shape[1] == channels


def test_set_in_channels_sums_kernels_for_one_channel() -> None:
    encoder = segcore.get_encoder("tu-test_convnext")
    stem = encoder.model.stem_0
    original = stem.weight.detach().clone()
    encoder.set_in_channels(1, pretrained=True)
    assert encoder.in_channels == 1 and encoder.out_channels[:2] == (1, 0)
    torch.testing.assert_close(stem.weight, original.sum(1, keepdim=True))
    with torch.no_grad():
        features = encoder.eval()(torch.randn(2, 1, 64, 64))
    assert features[-1].shape == (2, 64, 2, 2)


def test_set_in_channels_with_more_channels_rescales_cycled_kernels() -> None:
    encoder = segcore.get_encoder("tu-resnet18")
    original = encoder.model.conv1.weight.detach().clone()
    encoder.set_in_channels(4, pretrained=True)
    weight = encoder.model.conv1.weight
    assert weight.shape[1] == 4
    torch.testing.assert_close(weight[:, 3], original[:, 0] * 3 / 4)
    torch.testing.assert_close(weight[:, 1], original[:, 1] * 3 / 4)


def test_state_dict_keys_are_smp_keys() -> None:
    keys = set(segcore.get_encoder("tu-resnet18").state_dict())
    assert "model.conv1.weight" in keys and "model.layer4.1.bn2.running_var" in keys
    assert all(k.startswith("model.") for k in keys)
    assert not any(k.startswith("model.fc") for k in keys)


def test_compiles_with_fullgraph_and_inductor_free_backend() -> None:
    encoder = segcore.get_encoder("tu-test_convnext", depth=4).eval()
    compiled = torch.compile(encoder, fullgraph=True, backend="aot_eager")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = encoder(x)
        actual = compiled(x)
    for a, b in zip(actual, expected):
        torch.testing.assert_close(a, b)
