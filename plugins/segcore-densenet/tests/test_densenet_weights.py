"""Loading weights into the DenseNet encoders: local files, classifier files, first-conv adaptation,
the tag -> source -> download -> cache chain."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from segcore import testing

NAME = "densenet121"
FIRST_CONV = "features.conv0.weight"


state, weights_file = testing.weights_fixtures(NAME)


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


class TestWeights(testing.EncoderWeightsSuite):
    """The file loads exactly, the first conv adapts, the tag downloads; a bad digest fails."""

    encoder_name = NAME
    first_conv_keys = FIRST_CONV
    out_channels = (3, 64, 256, 512, 1024, 1024)
    download_in_channels = (1, 3)
    preprocessing = {"mean": [0.485, 0.456, 0.406]}
