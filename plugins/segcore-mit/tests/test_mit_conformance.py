"""The MiT encoders follow the segcore encoder contract, compute what the paper says, and work
in the architectures (and with TorchScript / torch.export)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import segcore
from segcore import testing
from segcore.errors import EncoderCapabilityError


def test_mit_b0_follows_the_contract() -> None:
    testing.check_encoder("mit_b0", depths=(1, 2, 3, 4, 5), in_channels=(1, 3, 4))


@pytest.mark.parametrize("name", ["mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5"])
def test_bigger_names_follow_the_contract(name: str) -> None:
    # Cheap settings: the bigger names run the same code as mit_b0 (checked fully above,
    # torch.compile graph capture included, which alone costs more than all of these);
    # each build of mit_b5 draws 81M random numbers.
    testing.check_encoder(name, depths=(5,), in_channels=(4,), size=32, compile=False)


def test_reduction_2_level_is_empty_and_sizes_round_up_on_odd_inputs() -> None:
    encoder = segcore.get_encoder("mit_b0").eval()
    x = torch.randn(2, 3, 65, 47)
    with torch.no_grad():
        features = testing.check_encoder_features(encoder, x, 5)
    assert features[0] is x
    assert tuple(features[1].shape) == (2, 0, 33, 24)
    assert features[1].dtype == x.dtype
    assert [tuple(f.shape[2:]) for f in features[2:]] == [(17, 12), (9, 6), (5, 3), (3, 2)]
    assert all(f.is_contiguous() for f in features[2:])


def _layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm, eps: float) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, eps)


def test_first_stage_matches_a_hand_computation() -> None:
    """Patch embedding, efficient attention (explicit softmax), Mix-FFN, stage norm."""
    torch.manual_seed(0)
    encoder = segcore.get_encoder("mit_b0", depth=2).eval()
    with torch.no_grad():
        for parameter in encoder.parameters():  # norms and biases away from 1 and 0
            parameter.add_(torch.randn_like(parameter) * 0.1)
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        features = encoder(x)
        embed = encoder.patch_embed1
        y = F.conv2d(x, embed.proj.weight, embed.proj.bias, stride=4, padding=3)
        height, width = y.shape[2:]
        t = _layer_norm(y.flatten(2).transpose(1, 2), embed.norm, 1e-5)
        for block in encoder.block1:
            attn, mlp = block.attn, block.mlp
            h = _layer_norm(t, block.norm1, 1e-6)
            q = F.linear(h, attn.q.weight, attn.q.bias).reshape(2, -1, 1, 32).transpose(1, 2)
            m = h.transpose(1, 2).reshape(2, 32, height, width)
            m = F.conv2d(m, attn.sr.weight, attn.sr.bias, stride=8)
            r = _layer_norm(m.flatten(2).transpose(1, 2), attn.norm, 1e-5)
            k, v = F.linear(r, attn.kv.weight, attn.kv.bias).chunk(2, dim=-1)
            k, v = k.reshape(2, -1, 1, 32).transpose(1, 2), v.reshape(2, -1, 1, 32).transpose(1, 2)
            weights = torch.softmax(q @ k.transpose(-2, -1) / 32**0.5, dim=-1)
            out = (weights @ v).transpose(1, 2).reshape(2, -1, 32)
            t = t + F.linear(out, attn.proj.weight, attn.proj.bias)
            h = F.linear(_layer_norm(t, block.norm2, 1e-6), mlp.fc1.weight, mlp.fc1.bias)
            h = h.transpose(1, 2).reshape(2, 128, height, width)
            h = F.conv2d(h, mlp.dwconv.dwconv.weight, mlp.dwconv.dwconv.bias, padding=1,
                         groups=128)
            h = F.gelu(h.flatten(2).transpose(1, 2))
            t = t + F.linear(h, mlp.fc2.weight, mlp.fc2.bias)
        expected = _layer_norm(t, encoder.norm1, 1e-6).transpose(1, 2).reshape(2, 32, 8, 12)
    torch.testing.assert_close(features[2], expected, atol=1e-5, rtol=1e-5)


def test_module_names_and_widths_are_smps() -> None:
    encoder = segcore.get_encoder("mit_b2")
    keys = set(encoder.state_dict())
    assert {"patch_embed1.proj.weight", "patch_embed1.norm.bias", "block1.0.norm1.weight",
            "block1.0.attn.q.weight", "block1.0.attn.kv.bias", "block1.0.attn.sr.weight",
            "block1.0.attn.norm.weight", "block1.0.attn.proj.weight", "block1.2.norm2.bias",
            "block1.0.mlp.fc1.weight", "block1.0.mlp.dwconv.dwconv.weight",
            "block1.0.mlp.fc2.bias", "norm1.weight", "block3.5.mlp.fc2.weight",
            "patch_embed4.proj.weight", "block4.2.attn.proj.bias", "norm4.bias"} <= keys
    assert not any(k.startswith("block4.0.attn.sr") for k in keys)  # sr_ratio 1: no reduction
    assert not any(k.startswith("head") for k in keys)
    assert [len(getattr(encoder, f"block{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert encoder.block3[0].attn.num_heads == 5 and encoder.block4[0].attn.num_heads == 8
    assert encoder.patch_embed1.proj.kernel_size == (7, 7)
    assert encoder.patch_embed1.proj.stride == (4, 4)
    assert encoder.patch_embed2.proj.stride == (2, 2)
    assert encoder.block1[0].attn.sr.stride == (8, 8)
    assert encoder.block1[0].norm1.eps == 1e-6 and encoder.norm1.eps == 1e-6
    assert encoder.patch_embed1.norm.eps == 1e-5 and encoder.block1[0].attn.norm.eps == 1e-5
    assert encoder.block1[0].mlp.fc1.out_features == 256


def test_stochastic_depth_grows_linearly_and_is_off_in_eval() -> None:
    encoder = segcore.get_encoder("mit_b0")
    rates = [block.drop_path.rate for i in range(1, 5) for block in getattr(encoder, f"block{i}")]
    assert rates == pytest.approx([0.1 * i / 7 for i in range(8)])
    drop = encoder.block4[1].drop_path
    x = torch.ones(4000, 3, 2)
    drop.train()
    torch.manual_seed(0)
    y = drop(x)
    values = torch.unique(y).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.9)
    assert 0.05 < float((y[:, 0, 0] == 0).float().mean()) < 0.15
    assert bool((y == y[:, :1, :1]).all())  # one decision per sample
    drop.eval()
    assert drop(x) is x


def test_torchscript_and_export_give_the_same_features() -> None:
    encoder = segcore.get_encoder("mit_b0", in_channels=1, depth=4)
    x = torch.randn(1, 1, 64, 96)
    testing.check_scripted_and_exported(encoder, x)


@pytest.mark.parametrize("architecture", ["unet", "fpn", "segformer"])
def test_architectures_build_and_run(architecture: str) -> None:
    pytest.importorskip(f"segcore_{architecture}")  # the package's tests alone: core + mit only
    testing.check_encoder_in_architecture(architecture, "mit_b0", in_channels=1, size=(64, 96),
                                          classes=3)


@pytest.mark.parametrize("architecture", ["deeplabv3plus", "deeplabv3"])
def test_deeplab_needs_dilation_and_is_refused_clearly(architecture: str) -> None:
    pytest.importorskip("segcore_deeplab")
    with pytest.raises(EncoderCapabilityError, match=r"mit_b0.*cannot be dilated"):
        segcore.build(architecture, encoder="mit_b0")
