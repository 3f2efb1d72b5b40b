"""Loading weights into the DenseNet encoders: local files, classifier files, first-conv adaptation,
the tag -> source -> download -> cache chain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import segcore
from segcore import testing

NAME = "densenet121"
FIRST_CONV = "features.conv0.weight"


state, weights_file = testing.weights_fixtures(NAME)


def test_safetensors_file_loads_exactly(weights_file: Path, state) -> None:
    testing.assert_same_state(segcore.get_encoder(NAME, weights=str(weights_file)), state)


def _old_style(key: str) -> str:
    """torchvision's key names before 0.3: ``denselayer1.norm1.weight`` -> ``norm.1.weight``."""
    return re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)


def test_torchvision_classifier_file_with_old_key_names_loads(tmp_path: Path, state) -> None:
    old = {_old_style(k): v for k, v in state.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    assert "features.denseblock1.denselayer1.conv.2.weight" in old
    assert "features.transition1.norm.weight" in old  # transitions never had the dot
    classifier = {"classifier.weight": torch.randn(10, 1024), "classifier.bias": torch.randn(10)}
    encoder = testing.check_classifier_file_loads(NAME, state, classifier,
                                                  tmp_path / "densenet121-classifier.pth",
                                                  saved=old)
    assert encoder.remap_state_dict(dict(state)).keys() == state.keys()  # new names unchanged


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_derived_from_the_rgb_kernel(weights_file: Path, state,
                                                   in_channels: int) -> None:
    testing.check_first_conv_adaptation(NAME, weights_file, state, FIRST_CONV, in_channels,
                                        out_channels=(3, 64, 256, 512, 1024, 1024))


def test_tag_is_downloaded_verified_and_cached(weights_file: Path, state,
                                               tmp_path: Path) -> None:
    testing.check_weights_download(NAME, "imagenet", weights_file, state, tmp_path / "cache",
                                   first_conv_keys=FIRST_CONV, in_channels=(1, 3),
                                   preprocessing={"mean": [0.485, 0.456, 0.406]})


def test_download_with_a_wrong_digest_is_refused(weights_file: Path, tmp_path: Path) -> None:
    testing.check_wrong_digest_refused(NAME, "imagenet", weights_file, tmp_path / "cache")
