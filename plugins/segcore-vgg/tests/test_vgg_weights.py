"""Loading weights into the VGG encoders: local files, classifier files, first-conv adaptation,
the tag -> source -> download -> cache chain."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import segcore
from segcore import testing

NAME = "vgg11_bn"  # has every kind of tensor (conv weight and bias, BN statistics)
FIRST_CONV = "features.0.weight"


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    """A vgg11_bn state dict whose every tensor (BN statistics included) is random."""
    return testing.random_state_dict(segcore.get_encoder(NAME))


@pytest.fixture()
def safetensors_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "vgg11_bn-test.safetensors"
    save_file(state, str(path))
    return path


def test_safetensors_file_loads_exactly(safetensors_file: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, weights=str(safetensors_file))
    testing.assert_same_state(encoder, state)


def test_torchvision_classifier_file_loads(tmp_path: Path, state) -> None:
    path = tmp_path / "vgg11_bn-classifier.pth"
    classifier = {"classifier.0.weight": torch.randn(8, 4), "classifier.0.bias": torch.randn(8),
                  "classifier.6.weight": torch.randn(10, 8), "classifier.6.bias": torch.randn(10)}
    torch.save({**state, **classifier}, path)
    encoder = segcore.get_encoder(NAME, weights=path)
    testing.assert_same_state(encoder, state)
    assert encoder.remap_state_dict({**state, **classifier}).keys() == state.keys()


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_derived_from_the_rgb_kernel(safetensors_file: Path, state,
                                                   in_channels: int) -> None:
    testing.check_first_conv_adaptation(NAME, safetensors_file, state, FIRST_CONV, in_channels,
                                        out_channels=(3, 128, 256, 512, 512, 512))


def test_tag_is_downloaded_verified_and_cached(safetensors_file: Path, state,
                                               tmp_path: Path) -> None:
    testing.check_weights_download(NAME, "imagenet", safetensors_file, state, tmp_path / "cache",
                                   first_conv_keys=FIRST_CONV, in_channels=(1, 3),
                                   preprocessing={"mean": [0.485, 0.456, 0.406]})


def test_download_with_a_wrong_digest_is_refused(safetensors_file: Path, tmp_path: Path) -> None:
    testing.check_wrong_digest_refused(NAME, "imagenet", safetensors_file, tmp_path / "cache")
