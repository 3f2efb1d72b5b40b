"""Loading weights into the VGG encoders: local files, classifier files, first-conv adaptation,
the tag -> source -> download -> cache chain."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import segcore
from segcore import testing

NAME = "vgg11_bn"  # has every kind of tensor (conv weight and bias, BN statistics)
FIRST_CONV = "features.0.weight"


state, weights_file = testing.weights_fixtures(NAME)


def test_safetensors_file_loads_exactly(weights_file: Path, state) -> None:
    testing.assert_same_state(segcore.get_encoder(NAME, weights=str(weights_file)), state)


def test_torchvision_classifier_file_loads(tmp_path: Path, state) -> None:
    classifier = {"classifier.0.weight": torch.randn(8, 4), "classifier.0.bias": torch.randn(8),
                  "classifier.6.weight": torch.randn(10, 8), "classifier.6.bias": torch.randn(10)}
    testing.check_classifier_file_loads(NAME, state, classifier, tmp_path / "classifier.pth")


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_derived_from_the_rgb_kernel(weights_file: Path, state,
                                                   in_channels: int) -> None:
    testing.check_first_conv_adaptation(NAME, weights_file, state, FIRST_CONV, in_channels,
                                        out_channels=(3, 128, 256, 512, 512, 512))


def test_tag_is_downloaded_verified_and_cached(weights_file: Path, state,
                                               tmp_path: Path) -> None:
    testing.check_weights_download(NAME, "imagenet", weights_file, state, tmp_path / "cache",
                                   first_conv_keys=FIRST_CONV, in_channels=(1, 3),
                                   preprocessing={"mean": [0.485, 0.456, 0.406]})


def test_download_with_a_wrong_digest_is_refused(weights_file: Path, tmp_path: Path) -> None:
    testing.check_wrong_digest_refused(NAME, "imagenet", weights_file, tmp_path / "cache")
