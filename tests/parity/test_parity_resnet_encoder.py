"""Parity of segcore-resnet with SMP 0.6.0: SMP encoder state dicts load strictly, same features."""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_resnet")

NAMES = ["resnet18", "resnet34", "resnext50_32x4d"]
CASES = [
    # (in_channels, output_stride)
    (3, 32),
    (3, 16),
    (1, 32),
]


@pytest.mark.parametrize("in_channels, output_stride", CASES)
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(name: str, in_channels: int,
                                                     output_stride: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=None,
                                         output_stride=output_stride).eval()
    ours = segcore.get_encoder(name, in_channels=in_channels, output_stride=output_stride).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride

    x = torch.randn(1, in_channels, 64, 64)
    with torch.no_grad():
        expected = reference(x)
        actual = ours(x)
    assert len(actual) == len(expected)
    for level, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"feature {level}: {tuple(a.shape)} vs {tuple(b.shape)}"
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5,
                                   msg=lambda m, level=level: f"{name} feature {level}: {m}")


@pytest.mark.parametrize("name", ["resnet18"])
def test_smp_model_checkpoint_encoder_part_loads(name: str) -> None:
    model = smp.Unet(name, encoder_weights=None, classes=2)
    prefix = "encoder."
    encoder_state = {k[len(prefix):]: v for k, v in model.state_dict().items()
                     if k.startswith(prefix)}
    ours = segcore.get_encoder(name)
    ours.load_state_dict(encoder_state, strict=True)

