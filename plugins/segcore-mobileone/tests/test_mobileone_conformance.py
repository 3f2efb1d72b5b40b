"""The MobileOne encoders follow the contract; re-parameterisation keeps the outputs."""

from __future__ import annotations

import pytest
import torch
from segcore_mobileone import MobileOneBlock, reparameterize_model

import segcore
from segcore import testing

SMALL = "mobileone_s1"
NAMES = ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4"]


def _close(actual: torch.Tensor, expected: torch.Tensor, label: str) -> None:
    """Equal up to float32 rounding, relative to the map's magnitude (s0's grow large)."""
    scale = float(expected.abs().max()) + 1.0
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale,
                               msg=lambda m: f"{label}: {m}")


def _with_statistics(encoder: torch.nn.Module) -> torch.nn.Module:
    """Give every batch norm non-trivial running statistics (one training-mode pass)."""
    with torch.no_grad():
        encoder.train()(torch.randn(4, encoder.in_channels, 64, 64))
    return encoder.eval()


def test_mobileone_s1_follows_the_contract() -> None:
    testing.check_encoder(SMALL, depths=(1, 3, 4, 5), in_channels=(1, 3, 4), size=64)


@pytest.mark.parametrize("name", [n for n in NAMES if n != SMALL])
def test_other_names_follow_the_contract(name: str) -> None:
    testing.check_encoder(name, depths=(5,), in_channels=(4,), size=32, compile=False)


def test_non_square_input_sizes() -> None:
    # every map is ceil(size / reduction): 64x96, 32x48, ..., 2x3
    with torch.no_grad():
        testing.check_encoder_features(segcore.get_encoder(SMALL).eval(),
                                       torch.randn(1, 3, 64, 96), depth=5)


def test_module_tree_is_smps() -> None:
    encoder = segcore.get_encoder("mobileone_s0")
    keys = set(encoder.state_dict())
    assert {"stage0.rbr_conv.0.conv.weight", "stage0.rbr_scale.bn.running_var",
            "stage1.0.rbr_conv.3.bn.weight", "stage1.1.rbr_conv.0.conv.weight",
            "stage1.2.rbr_skip.running_mean", "stage4.1.rbr_conv.0.bn.bias"} <= keys
    assert not any(k.startswith("stage0.rbr_skip") or "reparam_conv" in k for k in keys)
    assert len(encoder.stage0.rbr_conv) == 1  # the stem has one branch whatever the variant
    assert [len(getattr(encoder, f"stage{i}")) for i in range(1, 5)] == [4, 16, 20, 2]
    keys = set(segcore.get_encoder("mobileone_s4").state_dict())
    se = {k.split(".se.")[0] for k in keys if ".se." in k}
    assert se == {f"stage3.{i}" for i in range(10, 20)} | {"stage4.0", "stage4.1"}


@pytest.mark.parametrize("name", NAMES)
def test_reparameterized_encoder_gives_the_same_features(name: str) -> None:
    encoder = _with_statistics(segcore.get_encoder(name))
    fused = reparameterize_model(encoder)
    assert fused.fused and not encoder.fused  # a fused copy; the original is unchanged
    blocks = [m for m in fused.modules() if isinstance(m, MobileOneBlock)]
    assert all(len(b.rbr_conv) == 0 and b.rbr_scale is None and b.rbr_skip is None
               for b in blocks)
    assert {k.split(".")[-1] for k in fused.state_dict()} <= {"weight", "bias"}
    assert sum(p.numel() for p in fused.parameters()) < sum(
        p.numel() for p in encoder.parameters())
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected, actual = encoder(x), fused(x)
    for level, (a, b) in enumerate(zip(actual, expected)):
        _close(a, b, f"{name} feature {level}")


@pytest.mark.parametrize("output_stride", [16, 8])
def test_dilated_then_fused_encoder_gives_the_same_features(output_stride: int) -> None:
    encoder = _with_statistics(segcore.get_encoder("mobileone_s0", in_channels=1,
                                                   output_stride=output_stride))
    block = encoder.stage4[0]
    rate = 32 // output_stride
    assert block.rbr_conv[0].conv.dilation == (rate, rate)
    assert block.rbr_conv[0].conv.stride == (1, 1)
    assert encoder.stage2[0].rbr_conv[0].conv.stride == (2, 2)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        expected = encoder(x)
        encoder.reparameterize()  # in place
        actual = encoder(x)
    assert encoder.stage4[0].reparam_conv.dilation == (rate, rate)
    assert actual[-1].shape[-1] == 64 // output_stride
    for level, (a, b) in enumerate(zip(actual, expected)):
        _close(a, b, f"feature {level}")


def test_whole_model_is_fused_with_the_same_output() -> None:
    pytest.importorskip("segcore_unet")
    model = segcore.Unet(SMALL, encoder_weights=None, classes=2)
    _with_statistics(model.encoder)
    model.eval()
    fused = reparameterize_model(model)
    assert fused.encoder.fused and not model.encoder.fused
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _close(fused(x), model(x), "Unet mask")


@pytest.mark.parametrize("fuse", [False, True])
def test_torchscript_and_export_give_the_same_features(fuse: bool) -> None:
    encoder = segcore.get_encoder(SMALL, depth=4).eval()
    if fuse:
        encoder.reparameterize()
    x = torch.randn(1, 3, 64, 64)
    testing.check_scripted_and_exported(encoder, x)


def test_fused_encoder_compiles_in_one_graph() -> None:
    encoder = segcore.get_encoder(SMALL).eval().reparameterize()
    compiled = torch.compile(encoder, fullgraph=True, backend="eager")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(compiled(x), encoder(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("architecture", ["unet", "fpn", "deeplabv3plus"])
def test_builds_architectures(architecture: str) -> None:
    pytest.importorskip(f"segcore_{architecture.replace('v3plus', '')}")
    testing.check_encoder_in_architecture(architecture, SMALL)
