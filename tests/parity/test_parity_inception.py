"""Parity of segcore-inception with SMP 0.6.0: SMP state dicts load strictly, same features.

Every name, in_channels 3 and 1, at 64x64 and 64x96 (any size works: SMP pads every 3x3
convolution and max pooling of these networks, so 64x96 needs nothing special; an odd size
checks the padding too). Batch-norm statistics and affine parameters are randomised in the
SMP encoder before its state dict is copied, so that eps (1e-3 for the Inceptions) matters.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_inception")

import smp_pairs  # noqa: E402

from segcore.errors import EncoderCapabilityError  # noqa: E402

NAMES = ["inceptionresnetv2", "inceptionv4", "xception"]
# (in_channels, size): the two documented sizes with 3 and 1 channels, and an odd size once.
CASES = [(3, (64, 64)), (3, (64, 96)), (1, (64, 64)), (1, (64, 96)), (3, (33, 47))]


def _randomise_batch_norm(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                shape = layer.running_mean.shape
                layer.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
                layer.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                layer.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(shape, generator=generator) * 0.1)


@pytest.fixture(scope="module")
def encoders() -> Callable[[str, int, int], tuple[torch.nn.Module, torch.nn.Module]]:
    """(SMP encoder, segcore encoder with SMP's state dict), built once per module."""
    cache: dict[tuple[str, int, int], tuple[torch.nn.Module, torch.nn.Module]] = {}

    def get(name: str, in_channels: int, depth: int = 5) -> tuple[torch.nn.Module,
                                                                 torch.nn.Module]:
        key = (name, in_channels, depth)
        if key not in cache:
            torch.manual_seed(0)
            reference = smp.encoders.get_encoder(name, in_channels=in_channels, depth=depth,
                                                 weights=None).eval()
            _randomise_batch_norm(reference, seed=len(cache))
            ours = segcore.get_encoder(name, in_channels=in_channels, depth=depth).eval()
            ours.load_state_dict(reference.state_dict(), strict=True)
            cache[key] = (reference, ours)
        return cache[key]

    return get


@pytest.mark.parametrize("in_channels, size", CASES,
                         ids=[f"c{c}-{h}x{w}" for c, (h, w) in CASES])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(encoders, name: str, in_channels: int,
                                                     size: tuple[int, int]) -> None:
    reference, ours = encoders(name, in_channels)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    assert ours.output_stride == reference.output_stride
    torch.manual_seed(1)
    smp_pairs.assert_encoders_agree(reference, ours, torch.randn(2, in_channels, *size), name)


@pytest.mark.parametrize("depth", [3, 4])
def test_inceptionv4_shallow_depths_read_the_same_units(encoders, depth: int) -> None:
    reference, ours = encoders("inceptionv4", 3, depth)
    assert tuple(ours.out_channels) == tuple(reference.out_channels)
    torch.manual_seed(2)
    smp_pairs.assert_encoders_agree(reference, ours, torch.randn(1, 3, 64, 96), "inceptionv4")


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("name", NAMES)
def test_dilation_is_refused_by_both(name: str, output_stride: int) -> None:
    with pytest.raises(ValueError, match="dilated"):
        smp.encoders.get_encoder(name, weights=None, output_stride=output_stride)
    with pytest.raises(EncoderCapabilityError):
        segcore.get_encoder(name, output_stride=output_stride)


@pytest.mark.parametrize("name", NAMES)
def test_smp_unet_checkpoint_loads(name: str) -> None:
    torch.manual_seed(0)
    model = smp.Unet(name, encoder_weights=None, classes=2).eval()
    _randomise_batch_norm(model, seed=10)
    ours = segcore.get_encoder(name).eval()
    ours.load_state_dict(smp_pairs.smp_encoder_state(model), strict=True)
    x = torch.randn(1, 3, 64, 64)
    smp_pairs.assert_encoders_agree(model.encoder, ours, x, name)
    if "unet" not in segcore.list_architectures():
        return  # the whole model needs segcore-unet; the encoder part is checked above
    whole = segcore.Unet(name, encoder_weights=None, classes=2).eval()
    whole.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(whole(x), model(x), atol=1e-5, rtol=1e-5)
