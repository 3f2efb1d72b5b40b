"""Parity of segcore-senet with SMP 0.6.0's SE-Net encoders: SMP state dicts and SMP Unet
checkpoints load strictly, and the features agree within 1e-5.

Budget: each encoder is built once per module and side (SMP's, ours), with random weights and
random normalisation statistics; the other configurations (one input channel, output stride
16 and 8) are deep copies set up with the very calls both ``get_encoder`` functions make
(``set_in_channels(c, pretrained=False)``, ``make_dilated``). The chain itself,
``smp.encoders.get_encoder(name, in_channels=c, output_stride=s)`` into
``segcore.get_encoder(name, in_channels=c, output_stride=s)``, is checked on the meta device
for every name (keys, shapes, channels, stride: no memory, no initialisation), and with real
weights for se_resnet50.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_senet")

import smp_pairs  # noqa: E402

NAMES = ["senet154", "se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d",
         "se_resnext101_32x4d"]
SIZES = [(64, 64), (64, 96)]  # square and not square (the smallest sizes: multiples of 32)
CASES = [
    # (in_channels, output_stride)
    (3, 32),
    (1, 32),
    (3, 16),
    (1, 8),
]


def _randomise_normalisation(module: torch.nn.Module, seed: int) -> None:
    """Random BN statistics and affine parameters (SMP's init leaves them at 0/1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                for tensor, low, high in ((bn.running_mean, -0.2, 0.2),
                                          (bn.running_var, 0.5, 1.5),
                                          (bn.weight, 0.5, 1.5), (bn.bias, -0.2, 0.2)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator)
                                 * (high - low) + low)


class _Pair:
    """One SMP encoder and one segcore encoder of a name, with SMP's weights in both."""

    def __init__(self, name: str) -> None:
        self.name = name
        torch.manual_seed(0)
        self.reference = smp.encoders.get_encoder(name, in_channels=3, weights=None).eval()
        _randomise_normalisation(self.reference, seed=1)
        self.ours = segcore.get_encoder(name).eval()
        self.ours.load_state_dict(self.reference.state_dict(), strict=True)

    def configured(self, in_channels: int,
                   output_stride: int) -> tuple[torch.nn.Module, torch.nn.Module]:
        """Both encoders set up for ``in_channels`` and ``output_stride`` (copies)."""
        if (in_channels, output_stride) == (3, 32):
            return self.reference, self.ours
        reference, ours = copy.deepcopy(self.reference), copy.deepcopy(self.ours)
        for encoder in (reference, ours):
            if in_channels != 3:
                encoder.set_in_channels(in_channels, pretrained=False)
            if output_stride != 32:
                encoder.make_dilated(output_stride)
        ours.load_state_dict(reference.state_dict(), strict=True)
        return reference, ours


@pytest.fixture(scope="module", params=NAMES)
def pair(request: pytest.FixtureRequest) -> Iterator[_Pair]:
    """Built once per module and name; pytest groups the tests by name, so one pair (senet154:
    450 MB a side) lives at a time."""
    yield _Pair(request.param)


@pytest.mark.parametrize("in_channels, output_stride", CASES)
def test_features_agree(pair: _Pair, in_channels: int, output_stride: int) -> None:
    reference, ours = pair.configured(in_channels, output_stride)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == output_stride
    assert ours.layer0.conv1.in_channels == in_channels
    generator = torch.Generator().manual_seed(2)
    for height, width in SIZES:
        x = torch.randn(2, in_channels, height, width, generator=generator)
        smp_pairs.assert_encoders_agree(
            reference, ours, x, f"{pair.name} c={in_channels} os={output_stride} "
                                f"{height}x{width}", levels=6)


# SMP's first-convolution patch creates its kernel with torch.Tensor(...), which ignores the
# meta device: loading that CPU tensor into our meta module is a no-op torch warns about.
@pytest.mark.filterwarnings("ignore:for layer0.conv1.weight.*meta parameter:UserWarning")
@pytest.mark.parametrize("in_channels, output_stride", [(3, 32), (1, 32), (3, 16), (4, 8)])
@pytest.mark.parametrize("name", NAMES)
def test_get_encoder_state_dicts_load_strictly(name: str, in_channels: int,
                                               output_stride: int) -> None:
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=None,
                                             output_stride=output_stride)
        ours = segcore.get_encoder(name, in_channels=in_channels, output_stride=output_stride)
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == output_stride
    smp_count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in ours.parameters()) == smp_count


@pytest.mark.parametrize("name", NAMES)
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    with torch.device("meta"):
        model = smp.Unet(name, encoder_weights=None, classes=2)
        ours = segcore.get_encoder(name)
    ours.load_state_dict(smp_pairs.smp_encoder_state(model), strict=True)


@pytest.mark.parametrize("in_channels, output_stride", [(1, 16), (4, 8)])
def test_get_encoder_chain_with_real_weights(in_channels: int, output_stride: int) -> None:
    # The chain the meta test checks for every name, here with values (se_resnet50).
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder("se_resnet50", in_channels=in_channels, weights=None,
                                         output_stride=output_stride).eval()
    _randomise_normalisation(reference, seed=3)
    ours = segcore.get_encoder("se_resnet50", in_channels=in_channels,
                               output_stride=output_stride).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    smp_pairs.assert_encoders_agree(reference, ours, torch.randn(2, in_channels, 64, 96),
                                    "se_resnet50", levels=6)


def test_smp_unet_checkpoint_loads_into_segcore_unet() -> None:
    pytest.importorskip("segcore_unet")
    torch.manual_seed(0)
    reference = smp.Unet("se_resnext50_32x4d", encoder_weights=None, classes=2).eval()
    _randomise_normalisation(reference, seed=4)
    ours = segcore.Unet("se_resnext50_32x4d", encoder_weights=None, classes=2).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    encoder = segcore.get_encoder("se_resnext50_32x4d").eval()
    encoder.load_state_dict(smp_pairs.smp_encoder_state(reference), strict=True)
    x = torch.randn(2, 3, 64, 96)
    smp_pairs.assert_encoders_agree(reference.encoder, encoder, x,
                                    "se_resnext50_32x4d (Unet encoder)", levels=6)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)
