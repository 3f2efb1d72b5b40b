"""Parity of segcore-densenet with SMP 0.6.0: SMP state dicts load strictly, same features.

Also: torchvision's classifier files, with the old ``norm.1``-style keys SMP's
``load_state_dict`` renames, load through ``remap_state_dict``; whole Unet checkpoints give the
same masks.
"""

from __future__ import annotations

import re

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_densenet")

import smp_pairs  # noqa: E402

NAMES = ["densenet121", "densenet169", "densenet201", "densenet161"]


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(smp_encoders, name: str,
                                                     in_channels: int) -> None:
    reference, ours = smp_pairs.smp_encoder_and_ours(smp_encoders, name, in_channels)
    assert ours.output_stride == reference.output_stride == 32
    sizes = smp_pairs.ENCODER_SIZES
    smp_pairs.assert_features_agree_at_sizes(
        reference, ours, in_channels, name,
        sizes=sizes if name == "densenet121" or in_channels == 3 else sizes[1:])


@pytest.mark.parametrize("depth", [2, 4])
def test_shallow_encoders_agree(depth: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder("densenet121", depth=depth)
    x = torch.randn(1, 3, 64, 96)
    smp_pairs.assert_encoders_agree(reference, ours, x, "densenet121")


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_keys_and_dilation_refusal_like_smp(smp_encoders, name: str) -> None:
    smp_pairs.assert_undilatable_encoder_like_smps(smp_encoders, name)


def test_torchvision_file_with_old_key_names_loads_like_smp() -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    classifier = torchvision.models.densenet121(weights=None)
    for module in classifier.modules():  # non-trivial statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    # Files of that time have no BatchNorm ``num_batches_tracked`` (loading fills it in).
    old = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
           for k, v in classifier.state_dict().items() if "num_batches_tracked" not in k}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old and "classifier.bias" in old
    reference = smp.encoders.get_encoder("densenet121", weights=None).eval()
    reference.load_state_dict(dict(old))  # SMP renames in place and drops the classifier
    ours = segcore.get_encoder("densenet121").eval()
    ours.load_state_dict(ours.remap_state_dict(dict(old)), strict=True)
    x = torch.randn(1, 3, 64, 96)
    smp_pairs.assert_encoders_agree(reference, ours, x, "densenet121")
    with torch.no_grad():
        # SMP's deepest feature is torchvision's features() output.
        torch.testing.assert_close(ours(x)[-1], classifier.eval().features(x),
                                   atol=1e-5, rtol=1e-5)


def test_smp_unet_checkpoint_gives_the_same_masks() -> None:
    pytest.importorskip("segcore_unet")
    smp_pairs.assert_whole_smp_checkpoint_gives_the_same_masks(
        "unet", "Unet", "densenet121", torch.randn(1, 1, 64, 96))


@pytest.mark.parametrize("name", ["densenet169", "densenet161"])
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    smp_pairs.smp_unet_and_its_encoder(name, decoder_channels=(16,) * 5)
