"""Weights for the timm EfficientNets: tag -> source -> download/cache -> module, remapping of
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

NAME = "timm-efficientnet-b0"


state, weights_file = testing.weights_fixtures(NAME, filename="b0.safetensors")


class TestWeights(testing.EncoderWeightsSuite):
    # timm's classification files carry the classifier, which the encoder drops; other
    # unexpected keys are refused
    encoder_name = NAME
    first_conv_keys = "conv_stem.weight"
    classifier = {"classifier.weight": torch.randn(1000, 1280),
                  "classifier.bias": torch.randn(1000)}
    unexpected_keys = {"head.fc.weight": torch.zeros(2)}
    out_channels = (3, 32, 24, 40, 112, 320)


@pytest.mark.parametrize("tag", ["advprop", "noisy-student"])
def test_other_tags_are_downloaded_verified_cached_and_adapted(weights_file: Path, state,
                                                              tmp_path: Path, tag: str) -> None:
    # "imagenet" is TestWeights'; downloaded, then from the cache adapted to one channel
    testing.check_weights_download(NAME, tag, weights_file, state, tmp_path / "cache",
                                   first_conv_keys="conv_stem.weight")


def test_lite_smp_spelling_reads_the_cache_file_of_the_documented_name(tmp_path: Path,
                                                                        monkeypatch) -> None:
    # Offline: the file put by hand where the error says is what the tag loads, under the
    # documented (canonical) name whichever spelling asks for it.
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    alias, name = "timm-tf_efficientnet_lite0", "timm-efficientnet-lite0"
    with pytest.raises(WeightsError, match=re.escape(f"{name}.imagenet.safetensors")):
        segcore.get_encoder(alias, weights="imagenet")
    state = testing.random_state_dict(segcore.get_encoder(name), seed=1)
    folder = tmp_path / "cache" / name
    folder.mkdir(parents=True)
    save_file(state, str(folder / f"{name}.imagenet.safetensors"))
    testing.assert_same_state(segcore.get_encoder(alias, weights="imagenet"), state)
    testing.assert_same_state(segcore.get_encoder(name, weights="imagenet"), state)
