"""Weights for the SK-ResNe(X)ts: tag -> source -> download/cache -> module, remapping of
classifier files, and first-convolution adaptation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import segcore
from segcore import testing
from segcore.errors import WeightsError

NAME = "timm-skresnet18"


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """A state dict of NAME whose every tensor (BN statistics included) is random."""
    return testing.random_state_dict(segcore.get_encoder(NAME))


@pytest.fixture()
def weights_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "sk18.safetensors"
    save_file(state, str(path))
    return path


def test_file_loads_exactly(weights_file: Path, state) -> None:
    testing.assert_same_state(segcore.get_encoder(NAME, weights=str(weights_file)), state)


def test_classifier_keys_of_timm_files_are_dropped(tmp_path: Path, state) -> None:
    path = tmp_path / "sk18-classifier.pth"
    torch.save({**state, "fc.weight": torch.randn(1000, 512),
                "fc.bias": torch.randn(1000)}, path)
    testing.assert_same_state(segcore.get_encoder(NAME, weights=path), state)
    encoder = segcore.get_encoder(NAME)
    assert set(encoder.remap_state_dict({**state, "fc.bias": torch.zeros(1)})) == set(state)


def test_other_unexpected_keys_are_refused(tmp_path: Path, state) -> None:
    path = tmp_path / "sk18-extra.safetensors"
    save_file({**state, "head.fc.weight": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match=re.escape("head.fc.weight")):
        segcore.get_encoder(NAME, weights=path)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_convolution_is_derived_from_the_rgb_kernel(weights_file: Path, state,
                                                          in_channels: int) -> None:
    testing.check_first_conv_adaptation(NAME, weights_file, state, "conv1.weight", in_channels,
                                        out_channels=(3, 64, 64, 128, 256, 512))


def test_tag_is_downloaded_verified_cached_and_adapted(weights_file: Path, state,
                                                      tmp_path: Path) -> None:
    # downloaded, then from the cache with the first convolution adapted to one channel
    testing.check_weights_download(NAME, "imagenet", weights_file, state, tmp_path / "cache",
                                   first_conv_keys="conv1.weight")


def test_download_with_a_wrong_digest_is_refused(weights_file: Path, tmp_path: Path) -> None:
    testing.check_wrong_digest_refused(NAME, "imagenet", weights_file, tmp_path / "cache")
