"""Weights for the SK-ResNe(X)ts: tag -> source -> download/cache -> module, remapping of
classifier files, and first-convolution adaptation."""

from __future__ import annotations

from pathlib import Path

import torch

from segcore import testing

NAME = "timm-skresnet18"


state, weights_file = testing.weights_fixtures(NAME, filename="sk18.safetensors")


def test_classifier_keys_of_timm_files_are_dropped(tmp_path: Path, state) -> None:
    classifier = {"fc.weight": torch.randn(1000, 512),
                  "fc.bias": torch.randn(1000)}
    testing.check_classifier_file_loads(NAME, state, classifier, tmp_path / "sk18-classifier.pth")


def test_other_unexpected_keys_are_refused(tmp_path: Path, state) -> None:
    testing.check_unexpected_keys_refused(NAME, state, {"head.fc.weight": torch.zeros(2)},
                                          tmp_path / "sk18-extra.safetensors")


class TestWeights(testing.EncoderWeightsSuite):
    encoder_name = NAME
    first_conv_keys = "conv1.weight"
    out_channels = (3, 64, 64, 128, 256, 512)
