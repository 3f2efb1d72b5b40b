"""The decoder building blocks of ``segcore.nn``: ``SkipAttentionBlock`` and
``center_block_or_identity``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcore import testing
from segcore.nn import DoubleConv2dReLU, SkipAttentionBlock, center_block_or_identity


class _UpsamplingBlock(SkipAttentionBlock):
    """Doubles the size, then fuses (the shape of the Unet-style decoder blocks)."""

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        return self.fuse(F.interpolate(x, scale_factor=2.0, mode=self.interpolation_mode), skip)


def test_skip_attention_block_has_smps_layout() -> None:
    block = SkipAttentionBlock(6, 4, 5, attention_type="scse")
    assert [name for name, _ in block.named_children()] == [
        "conv1", "attention1", "conv2", "attention2"]
    assert block.conv1[0].in_channels == 10 and block.conv1[0].out_channels == 5
    assert block.attention1.attention.cSE[1].in_channels == 10
    assert block.attention2.attention.cSE[1].in_channels == 5
    assert block.out_channels == 5 and not block.is_empty


@pytest.mark.parametrize("attention", [None, "scse"])
def test_fuse_concatenates_the_skip_then_attention_conv_conv_attention(attention) -> None:
    block = SkipAttentionBlock(6, 4, 5, attention_type=attention).eval()
    testing.randomise_weights(block)
    x, skip = torch.randn(2, 6, 7, 9), torch.randn(2, 4, 7, 9)
    with torch.no_grad():
        actual = block.fuse(x, skip)
        expected = torch.cat([x, skip], dim=1)
        if attention == "scse":
            expected = testing.reference_scse(expected, block.attention1.attention)
        expected = testing.reference_conv_norm_relu(expected, block.conv1)
        expected = testing.reference_conv_norm_relu(expected, block.conv2)
        if attention == "scse":
            expected = testing.reference_scse(expected, block.attention2.attention)
    assert actual.shape == (2, 5, 7, 9)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_fuse_without_a_skip_skips_the_first_attention() -> None:
    block = SkipAttentionBlock(6, 0, 5, attention_type="scse").eval()
    block.attention1.register_forward_hook(lambda *args: pytest.fail("attention1 ran"))
    assert block.fuse(torch.randn(1, 6, 4, 4)).shape == (1, 5, 4, 4)


def test_freeze_unfused_attention_freezes_only_the_first_attention() -> None:
    block = SkipAttentionBlock(6, 0, 5, attention_type="scse")
    block.freeze_unfused_attention()
    assert not any(p.requires_grad for p in block.attention1.parameters())
    others = [p for name, p in block.named_parameters() if not name.startswith("attention1.")]
    assert others and all(p.requires_grad for p in others)
    SkipAttentionBlock(6, 0, 0).freeze_unfused_attention()  # an empty block: nothing to do


def test_an_empty_block_has_no_layers_and_returns_no_channels() -> None:
    block = _UpsamplingBlock(6, 4, 0)
    assert block.is_empty and list(block.parameters()) == []
    assert block.conv1 is None and block.attention2 is None
    out = block(torch.randn(2, 6, 3, 5), torch.randn(2, 4, 6, 10))
    assert out.shape == (2, 0, 6, 10)


def test_a_subclass_scripts_and_gives_the_same_outputs() -> None:
    block = _UpsamplingBlock(6, 4, 5, attention_type="scse", interpolation_mode="bilinear")
    testing.randomise_weights(block)
    block.eval()
    x, skip = torch.randn(1, 6, 4, 4), torch.randn(1, 4, 8, 8)
    scripted = torch.jit.script(block)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x, skip), block(x, skip))


class _Center(DoubleConv2dReLU):
    """A named center block, as the Unet-style plugins declare theirs."""


def test_center_block_or_identity() -> None:
    assert isinstance(center_block_or_identity(False, 8, "batchnorm", _Center), nn.Identity)
    center = center_block_or_identity(True, 8, False, _Center)
    assert type(center) is _Center
    assert center[0][0].in_channels == 8 and center[1][0].out_channels == 8
    assert center[0][0].bias is not None  # no norm: the convolutions get a bias
    assert type(center_block_or_identity(True, 4, "batchnorm")) is DoubleConv2dReLU
