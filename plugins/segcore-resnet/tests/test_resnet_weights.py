"""Loading weights into the ResNet encoders: local files, first-conv adaptation, downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import segcore
from segcore import testing

FIRST_CONV = "conv1.weight"


state, weights_file = testing.weights_fixtures("resnet18")


def test_safetensors_file_loads_exactly(weights_file: Path, state) -> None:
    testing.assert_same_state(segcore.get_encoder("resnet18", weights=str(weights_file)), state)


def test_classifier_file_with_fc_keys_loads(tmp_path: Path, state) -> None:
    classifier = {"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}
    testing.check_classifier_file_loads("resnet18", state, classifier,
                                        tmp_path / "resnet18-classifier.pth")


# One channel: the sum of the RGB kernels. Four: R, G, B, R scaled by 3/4, so that an input
# whose 4th channel repeats the 1st gives 3/4 * (original + channel-0 response).
@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_derived_from_the_rgb_kernel(weights_file: Path, state,
                                                   in_channels: int) -> None:
    testing.check_first_conv_adaptation("resnet18", weights_file, state, FIRST_CONV,
                                        in_channels, out_channels=(3, 64, 64, 128, 256, 512),
                                        conv_reference={"stride": 2, "padding": 3}, size=64)


def test_tag_is_downloaded_verified_and_cached(weights_file: Path, state,
                                               tmp_path: Path) -> None:
    # "swsl" is SMP's spelling of the tag "sswl"
    testing.check_weights_download("resnet18", "sswl", weights_file, state, tmp_path / "cache",
                                   first_conv_keys=FIRST_CONV, requested=("swsl", "sswl"))


def test_download_with_a_wrong_digest_is_refused(weights_file: Path, tmp_path: Path) -> None:
    testing.check_wrong_digest_refused("resnet18", "imagenet", weights_file,
                                       tmp_path / "cache")
