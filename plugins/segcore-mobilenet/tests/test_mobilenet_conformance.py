"""The MobileNetV2 encoder follows the segcore encoder contract and torchvision's layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import segcore
from segcore import testing


def test_mobilenet_v2_follows_the_contract() -> None:
    testing.check_encoder("mobilenet_v2", depths=(1, 3, 4, 5), in_channels=(1, 3, 4),
                          size=32, compile_backend="eager")


def test_module_names_are_torchvision_names() -> None:
    encoder = segcore.get_encoder("mobilenet_v2")
    keys = set(encoder.state_dict())
    assert {"features.0.0.weight", "features.0.1.running_var",
            "features.1.conv.0.0.weight", "features.1.conv.1.weight", "features.1.conv.2.bias",
            "features.2.conv.0.0.weight", "features.2.conv.1.0.weight",
            "features.2.conv.2.weight", "features.2.conv.3.running_mean",
            "features.17.conv.3.weight", "features.18.0.weight", "features.18.1.bias"} <= keys
    assert not any(k.startswith(("classifier", "features.19")) for k in keys)


def test_block_structure() -> None:
    from segcore_mobilenet import InvertedResidual

    encoder = segcore.get_encoder("mobilenet_v2")
    blocks = list(encoder.features)[1:18]
    assert all(isinstance(b, InvertedResidual) for b in blocks)
    strides = [b.conv[-3][0].stride[0] for b in blocks]  # the depthwise convolution
    assert strides == [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
    residual = [i for i, b in enumerate(blocks, start=1) if b.use_residual]
    assert residual == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]
    depthwise = blocks[5].conv[1][0]
    assert depthwise.groups == depthwise.in_channels == 192
    assert isinstance(encoder.features[18][2], nn.ReLU6)


def test_residual_block_adds_its_input() -> None:
    encoder = segcore.get_encoder("mobilenet_v2").eval()
    block = encoder.features[3]
    x = torch.randn(1, 24, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + block.conv(x))
        projection = encoder.features[2]
        torch.testing.assert_close(projection(torch.randn(1, 16, 8, 8)).shape[1:], (24, 4, 4))


@pytest.mark.parametrize("output_stride, rates", [(16, (2, 2)), (8, (2, 4))])
def test_dilation_replaces_strides_of_the_last_stages(output_stride: int, rates) -> None:
    encoder = segcore.get_encoder("mobilenet_v2", output_stride=output_stride).eval()
    assert encoder.output_stride == output_stride
    first_16, first_32 = encoder.features[7].conv[1][0], encoder.features[14].conv[1][0]
    if output_stride == 16:
        assert first_16.stride == (2, 2) and first_16.dilation == (1, 1)
        assert first_32.stride == (1, 1) and first_32.dilation == (rates[1],) * 2
    else:
        assert first_16.stride == (1, 1) and first_16.dilation == (rates[0],) * 2
        assert first_32.stride == (1, 1) and first_32.dilation == (rates[1],) * 2
        assert encoder.features[13].conv[1][0].padding == (2, 2)
    assert encoder.features[6].conv[1][0].dilation == (1, 1)  # stride 8 and above: untouched
    features = encoder(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 64 // output_stride


def test_shallow_encoders_do_not_run_the_deeper_blocks() -> None:
    encoder = segcore.get_encoder("mobilenet_v2", depth=3).eval()
    calls: list[int] = []
    for index, module in enumerate(encoder.features):
        module.register_forward_hook(lambda *_, index=index: calls.append(index))
    features = encoder(torch.randn(1, 3, 32, 32))
    assert [f.shape[1] for f in features] == [3, 16, 24, 32]
    assert max(calls) == 6


def test_torchscript_gives_the_same_features() -> None:
    testing.check_torchscript(segcore.get_encoder("mobilenet_v2", output_stride=16),
                              torch.randn(1, 3, 32, 32))


def test_torch_export_gives_the_same_features() -> None:
    testing.check_export(segcore.get_encoder("mobilenet_v2", depth=4), torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("architecture, options", [
    ("unet", {}), ("fpn", {}), ("deeplabv3plus", {}),
    ("deeplabv3plus", {"encoder_output_stride": 8}),
])
def test_architectures_build(architecture: str, options: dict) -> None:
    pytest.importorskip(f"segcore_{'deeplab' if 'deeplab' in architecture else architecture}")
    testing.check_encoder_in_architecture(architecture, "mobilenet_v2", **options)
