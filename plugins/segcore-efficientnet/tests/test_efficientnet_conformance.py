"""The EfficientNet encoders follow the segcore contract; padding, drop connect, dilation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from segcore_efficientnet.encoder import MBConvBlock, SameConv2d, same_padding

import segcore
from segcore import testing
from segcore.errors import InvalidOptionError

BIG = [f"efficientnet-b{i}" for i in range(1, 8)]


def test_b0_follows_the_whole_contract() -> None:
    testing.check_encoder("efficientnet-b0", depths=(1, 3, 5), in_channels=(1, 3, 4),
                          compile_backend="eager")


@pytest.mark.parametrize("name", BIG)
def test_bigger_names_follow_the_contract(name: str) -> None:
    # Cheap settings (the code is b0's; parity with SMP covers every name): one depth, 32x32,
    # no graph capture; dilation only up to b4 (construction of b5-b7 dominates the time).
    testing.check_encoder(name, depths=(5,), in_channels=(4,), size=32, compile=False,
                          dilation=name <= "efficientnet-b4")


@pytest.mark.parametrize("size, kernel, stride", [(s, k, st) for s in (7, 8, 15, 16, 75, 224)
                                                  for k in (1, 3, 5) for st in (1, 2)])
def test_same_padding_gives_ceil_size_and_puts_the_odd_pixel_after(size, kernel, stride):
    before, after = same_padding(size, kernel, stride)
    assert 0 <= after - before <= 1
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)


def test_static_padding_is_fixed_by_the_nominal_resolution() -> None:
    # b0 (224): the stem pads (0, 1) whatever the input; b3 (300 -> 75 at 1/4): the first
    # 5x5 stride-2 block pads (2, 2), folded into the convolution.
    b0 = segcore.get_encoder("efficientnet-b0")
    assert isinstance(b0._conv_stem.static_padding, torch.nn.ZeroPad2d)
    assert b0._conv_stem.static_padding.padding == (0, 1, 0, 1)
    assert b0._conv_stem.padding == (0, 0)
    b3 = segcore.get_encoder("efficientnet-b3", depth=3)
    conv = b3._blocks[5]._depthwise_conv
    assert conv.kernel_size == (5, 5) and conv.stride == (2, 2)
    assert isinstance(conv.static_padding, torch.nn.Identity) and conv.padding == (2, 2)

    torch.manual_seed(0)
    x = torch.randn(1, 3, 40, 24)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), b0._conv_stem.weight, stride=2)
    torch.testing.assert_close(b0._conv_stem(x), expected, rtol=0, atol=0)
    assert expected.shape[-2:] == (20, 12)


def test_stride_one_same_conv_keeps_the_size_and_pads_symmetrically() -> None:
    conv = SameConv2d(4, 4, 5, stride=1, groups=4, image_size=(28, 28))
    assert conv.padding == (2, 2) and isinstance(conv.static_padding, torch.nn.Identity)
    assert conv(torch.randn(1, 4, 9, 13)).shape == (1, 4, 9, 13)


def _block(drop: float) -> MBConvBlock:
    torch.manual_seed(0)
    return MBConvBlock(8, 8, 3, 1, 6, 2, (16, 16), drop_connect_prob=drop)


def test_drop_connect_drops_whole_samples_in_training_only() -> None:
    block = _block(0.5).train()
    reference = _block(0.0).train()  # same weights, no drop connect
    x = torch.randn(64, 8, 4, 4)
    with torch.no_grad():
        residual = reference(x) - x        # the branch (BN in training mode: batch statistics)
        out = block(x) - x
    dropped = out.flatten(1).abs().amax(1) == 0
    kept = ~dropped
    assert 8 < int(dropped.sum()) < 56     # about half of 64 samples
    torch.testing.assert_close(out[kept], residual[kept] / 0.5)
    block.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(x), rtol=0, atol=0)


def test_drop_connect_probability_must_be_below_one() -> None:
    with pytest.raises(InvalidOptionError, match="drop_connect_prob"):
        _block(1.0)


def test_drop_connect_rate_grows_linearly_and_skips_projection_blocks() -> None:
    encoder = segcore.get_encoder("efficientnet-b0")
    blocks = list(encoder._blocks)
    assert [b.drop_connect_prob for b in blocks] == [0.2 * i / 16 for i in range(16)]
    residual = [b._residual for b in blocks]
    # Stage starts (stride 2 or new width) have no skip: b0 blocks 0, 1, 3, 5, 8, 11, 15.
    assert [i for i, r in enumerate(residual) if not r] == [0, 1, 3, 5, 8, 11, 15]


def test_swish_is_silu_and_its_gradient() -> None:
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    (F.silu(x) * torch.arange(100)).sum().backward()
    sig = torch.sigmoid(x.detach())
    torch.testing.assert_close(F.silu(x.detach()), x.detach() * sig)
    torch.testing.assert_close(x.grad, torch.arange(100) * sig * (1 + x.detach() * (1 - sig)),
                               check_dtype=False)


@pytest.mark.parametrize("output_stride, rates", [(16, (1, 2)), (8, (2, 4))])
def test_dilation_follows_smps_stages(output_stride: int, rates) -> None:
    encoder = segcore.get_encoder("efficientnet-b0", output_stride=output_stride)
    assert encoder.output_stride == output_stride
    blocks = list(encoder._blocks)
    # b0: features after blocks 2, 4, 8, 15; "16" = blocks 5..8, "32" = blocks 9..15.
    for index, block in enumerate(blocks):
        conv = block._depthwise_conv
        rate = 1 if index < 5 else rates[0] if index <= 8 else rates[1]
        assert conv.dilation == (rate, rate), index
        if rate > 1:
            assert conv.stride == (1, 1)
            assert isinstance(conv.static_padding, torch.nn.Identity)
            assert conv.padding == (conv.kernel_size[0] // 2 * rate,) * 2
    assert blocks[3]._depthwise_conv.stride == (2, 2)
    features = encoder(torch.randn(1, 3, 64, 96))
    assert features[-1].shape[-2:] == (64 // output_stride, 96 // output_stride)


def test_depth_limits_the_blocks_that_run() -> None:
    encoder = segcore.get_encoder("efficientnet-b0", depth=3).eval()
    calls = []
    for index, block in enumerate(encoder._blocks):
        block.register_forward_hook(lambda *_, index=index: calls.append(index))
    features = encoder(torch.randn(1, 3, 32, 32))
    assert [f.shape[1] for f in features] == [3, 32, 24, 40]
    assert calls == [0, 1, 2, 3, 4]


def test_torchscript_and_export_give_the_same_features() -> None:
    torch.manual_seed(0)
    encoder = segcore.get_encoder("efficientnet-b0", depth=3)
    x = torch.randn(1, 3, 32, 32)
    testing.check_scripted_and_exported(encoder, x, rtol=0, atol=0)


@pytest.mark.parametrize("architecture, package, options", [
    ("Unet", "segcore_unet", {}),
    ("FPN", "segcore_fpn", {}),
    ("DeepLabV3Plus", "segcore_deeplab", {"encoder_output_stride": 16}),
])
def test_architectures_build_and_run(architecture: str, package: str, options) -> None:
    pytest.importorskip(package)  # alone with core (nox -s isolated) there is no architecture
    model_class = getattr(segcore, architecture)
    model = model_class(encoder_name="efficientnet-b0", encoder_weights=None, in_channels=1,
                        classes=3, **options).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 96)).shape == (1, 3, 64, 96)


@pytest.mark.parametrize("feature_blocks", [(2, 4, 8), (2, 4, 8, 16), (4, 2, 8, 15)])
def test_feature_blocks_are_validated(feature_blocks) -> None:
    from segcore_efficientnet import EfficientNetEncoder

    with pytest.raises(InvalidOptionError, match="feature_blocks"):
        EfficientNetEncoder(feature_blocks=feature_blocks)
