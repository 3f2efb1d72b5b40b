"""Parity of segcore-skresnet with SMP 0.6.0: SMP state dicts load strictly into the segcore
encoders and give the same features (random init, eval mode, float32)."""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_skresnet")

pytestmark = pytest.mark.filterwarnings("ignore:`timm-` encoders are deprecated")

NAMES = ["timm-skresnet18", "timm-skresnet34", "timm-skresnext50_32x4d"]
SIZES = [(64, 64), (64, 96)]


def _assert_same_features(ours: torch.nn.Module, reference: torch.nn.Module, name: str,
                          in_channels: int) -> None:
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride
    for height, width in SIZES:
        x = torch.randn(1, in_channels, height, width)
        with torch.no_grad():
            expected = reference(x)
            actual = ours(x)
        assert len(actual) == len(expected)
        for level, (a, b) in enumerate(zip(actual, expected)):
            assert a.shape == b.shape, f"{name} feature {level}: {a.shape} vs {b.shape}"
            torch.testing.assert_close(
                a, b, atol=1e-5, rtol=1e-5,
                msg=lambda m, level=level, size=(height, width): f"{name} {size} {level}: {m}")


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_and_out_channels_equal_smps(name: str) -> None:
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, weights=None)
        ours = segcore.get_encoder(name)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters())
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}


@pytest.mark.parametrize("in_channels, output_stride", [(3, 32), (1, 32), (3, 16), (1, 8)])
@pytest.mark.parametrize("name", NAMES)
def test_smp_state_dict_loads_and_features_agree(name: str, in_channels: int,
                                                 output_stride: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=None,
                                         output_stride=output_stride).eval()
    ours = segcore.get_encoder(name, in_channels=in_channels,
                               output_stride=output_stride).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    _assert_same_features(ours, reference, name, in_channels)


@pytest.mark.parametrize("name", ["timm-skresnet18", "timm-skresnext50_32x4d"])
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    model = smp.Unet(name, encoder_weights=None, classes=2)
    prefix = "encoder."
    encoder_state = {k[len(prefix):]: v for k, v in model.state_dict().items()
                     if k.startswith(prefix)}
    ours = segcore.get_encoder(name).eval()
    ours.load_state_dict(encoder_state, strict=True)
    _assert_same_features(ours, model.encoder.eval(), name, 3)
