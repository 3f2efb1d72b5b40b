"""Parity of segcore-dpn with SMP 0.6.0: SMP encoder state dicts load strictly, same features.

Every DPN name, input channels 3 and 1, a square and a non-square input, output stride 32 and
16 (dilated), and the encoder part of an SMP ``Unet`` checkpoint.
"""

from __future__ import annotations

import functools

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_dpn")

NAMES = ["dpn68", "dpn68b", "dpn92", "dpn98", "dpn107", "dpn131"]
SIZES = [(64, 64), (64, 96)]


@functools.lru_cache(maxsize=2)  # one name at a time: the big ones hold ~300 MB each
def _pair(name: str, in_channels: int, output_stride: int) -> tuple[torch.nn.Module,
                                                                    torch.nn.Module]:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=None,
                                         output_stride=output_stride).eval()
    ours = segcore.get_encoder(name, in_channels=in_channels, output_stride=output_stride)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours.eval()


def _assert_same_features(reference: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor,
                          label: str) -> None:
    with torch.no_grad():
        expected = reference(x)
        actual = ours(x)
    assert len(actual) == len(expected)
    for level, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"{label} feature {level}: {tuple(a.shape)} vs {tuple(b.shape)}"
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                   msg=lambda m, level=level: f"{label} feature {level}: {m}")


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(name: str, in_channels: int) -> None:
    reference, ours = _pair(name, in_channels, 32)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride
    for height, width in SIZES:
        x = torch.randn(1, in_channels, height, width, generator=torch.Generator().manual_seed(1))
        _assert_same_features(reference, ours, x, f"{name} {in_channels}ch {height}x{width}")


@pytest.mark.parametrize("name", NAMES)
def test_dilated_features_agree(name: str) -> None:
    reference, ours = _pair(name, 3, 16)
    assert ours.output_stride == reference.output_stride == 16
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    _assert_same_features(reference, ours, x, f"{name} output stride 16")


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_smp(name: str) -> None:
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, weights=None)
        ours = segcore.get_encoder(name)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters())


@pytest.mark.parametrize("name", ["dpn68", "dpn68b"])
def test_smp_model_checkpoint_encoder_part_loads(name: str) -> None:
    model = smp.Unet(name, encoder_weights=None, classes=2)
    prefix = "encoder."
    encoder_state = {k[len(prefix):]: v for k, v in model.state_dict().items()
                     if k.startswith(prefix)}
    ours = segcore.get_encoder(name)
    ours.load_state_dict(encoder_state, strict=True)
    model.encoder.eval()
    x = torch.randn(1, 3, 64, 64)
    _assert_same_features(model.encoder, ours.eval(), x, f"Unet({name}).encoder")
