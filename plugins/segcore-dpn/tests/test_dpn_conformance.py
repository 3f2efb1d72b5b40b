"""The DPN encoders follow the segcore encoder contract; the block math; export paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from segcore_dpn.encoder import DualPathBlock

import segcore
from segcore import testing
from segcore.encoder import EncoderBase

SMALL = "dpn68"
OTHERS = ["dpn68b", "dpn92", "dpn98", "dpn107", "dpn131"]


def test_dpn68_follows_the_contract() -> None:
    testing.check_encoder(SMALL, depths=(1, 3, 4, 5), in_channels=(1, 3, 4), size=64)  # all


@pytest.mark.parametrize("name", OTHERS)
def test_other_names_follow_the_contract(name: str) -> None:
    # The same code as dpn68 with other widths: one depth and input channel count, 32x32;
    # graph capture is checked on dpn68 only (the same forward).
    testing.check_encoder(name, depths=(5,), in_channels=(4,), size=32, compile=False,
                          dilation=name not in ("dpn107", "dpn131"))


def test_non_square_input_sizes() -> None:
    # every map is ceil(size / reduction): 64x96, 32x48, ..., 2x3
    with torch.no_grad():
        testing.check_encoder_features(segcore.get_encoder(SMALL).eval(),
                                       torch.randn(1, 3, 64, 96), depth=5)


def _bn(t: torch.Tensor, m: torch.nn.BatchNorm2d) -> torch.Tensor:
    return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def _randomise_statistics(module: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=generator) * 0.1)


@pytest.mark.parametrize("separate_outputs", [False, True])
def test_dual_path_blocks_match_a_hand_computation(separate_outputs: bool) -> None:
    """A "down" block then a "normal" block, computed with the tuple form of the paper."""
    torch.manual_seed(0)
    residual, inc, groups = 32, 8, 4
    first = DualPathBlock(24, 16, residual, inc, groups, "down", separate_outputs).eval()
    second = DualPathBlock(residual + 3 * inc, 16, residual, inc, groups, "normal",
                           separate_outputs).eval()
    for block in (first, second):
        _randomise_statistics(block)
    x = torch.randn(2, 24, 12, 10)

    def pre(t, m, stride=1, padding=0, groups=1):
        return F.conv2d(F.relu(_bn(t, m.bn)), m.conv.weight, stride=stride, padding=padding,
                        groups=groups)

    def reference(block, x_in, paths, stride):
        y = pre(pre(x_in, block.c1x1_a), block.c3x3_b, stride, 1, groups)
        if separate_outputs:
            y = F.relu(_bn(y, block.c1x1_c.bn))
            out1, out2 = F.conv2d(y, block.c1x1_c1.weight), F.conv2d(y, block.c1x1_c2.weight)
        else:
            y = pre(y, block.c1x1_c)
            out1, out2 = y[:, :residual], y[:, residual:]
        return paths[0] + out1, torch.cat([paths[1], out2], 1)

    with torch.no_grad():
        projected = pre(x, first.c1x1_w_s2, stride=2)
        resid, dense = reference(first, x, (projected[:, :residual], projected[:, residual:]), 2)
        resid, dense = reference(second, torch.cat([resid, dense], 1), (resid, dense), 1)
        actual = second(first(x))
    assert actual.shape == (2, residual + 4 * inc, 6, 5)
    torch.testing.assert_close(actual, torch.cat([resid, dense], 1))


def test_module_names_are_smp_names() -> None:
    keys = set(segcore.get_encoder("dpn68b").state_dict())
    assert {"features.conv1_1.conv.weight", "features.conv1_1.bn.running_var",
            "features.conv2_1.c1x1_w_s1.conv.weight", "features.conv3_1.c1x1_w_s2.bn.weight",
            "features.conv2_2.c1x1_a.conv.weight", "features.conv2_2.c3x3_b.conv.weight",
            "features.conv2_2.c1x1_c.bn.weight", "features.conv2_2.c1x1_c1.weight",
            "features.conv2_2.c1x1_c2.weight", "features.conv5_bn_ac.bn.bias"} <= keys
    assert not any("last_linear" in k or ("c1x1_w" in k and "conv2_2" in k) for k in keys)
    keys = set(segcore.get_encoder("dpn92").state_dict())
    assert "features.conv2_2.c1x1_c.conv.weight" in keys
    assert not any("c1x1_c1" in k for k in keys)
    encoder = segcore.get_encoder("dpn92")
    assert encoder.features.conv1_1.conv.kernel_size == (7, 7)
    assert encoder.features.conv1_1.bn.eps == 1e-3


@pytest.mark.parametrize("output_stride, rates", [(16, (1, 2)), (8, (2, 4))])
def test_dilation_replaces_the_strides_of_stages_4_and_5(output_stride: int, rates) -> None:
    encoder = segcore.get_encoder(SMALL, output_stride=output_stride)
    assert encoder.output_stride == output_stride
    stage4, stage5 = encoder.features.conv4_1, encoder.features.conv5_1
    for block, rate in zip((stage4, stage5), rates):
        assert block.c3x3_b.conv.dilation == (rate, rate)
        assert block.c3x3_b.conv.stride == (1, 1) or rate == 1
        assert block.c1x1_w_s2.conv.stride == ((1, 1) if rate > 1 else (2, 2))
    assert encoder.features.conv3_1.c3x3_b.conv.stride == (2, 2)  # reduction 8: never dilated
    features = encoder(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 64 // output_stride


def test_torchscript_and_export_give_the_same_features() -> None:
    encoder = segcore.get_encoder(SMALL, depth=4)
    x = torch.randn(1, 3, 64, 64)
    testing.check_scripted_and_exported(encoder, x)


@pytest.mark.parametrize("architecture, options", [
    ("unet", {}), ("fpn", {}), ("deeplabv3plus", {}),
])
def test_builds_architectures(architecture: str, options: dict) -> None:
    pytest.importorskip(f"segcore_{architecture.replace('v3plus', '').replace('v3', '')}")
    model = testing.check_encoder_in_architecture(architecture, SMALL, **options)
    assert isinstance(model.encoder, EncoderBase)
