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


def test_file_loads_exactly(weights_file: Path, state) -> None:
    testing.assert_same_state(segcore.get_encoder(NAME, weights=str(weights_file)), state)


def test_classifier_keys_of_timm_files_are_dropped(tmp_path: Path, state) -> None:
    classifier = {"classifier.weight": torch.randn(1000, 1280),
                  "classifier.bias": torch.randn(1000)}
    testing.check_classifier_file_loads(NAME, state, classifier, tmp_path / "b0-classifier.pth")


def test_other_unexpected_keys_are_refused(tmp_path: Path, state) -> None:
    testing.check_unexpected_keys_refused(NAME, state, {"head.fc.weight": torch.zeros(2)},
                                          tmp_path / "b0-extra.safetensors")


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_convolution_is_derived_from_the_rgb_kernel(weights_file: Path, state,
                                                          in_channels: int) -> None:
    testing.check_first_conv_adaptation(NAME, weights_file, state, "conv_stem.weight",
                                        in_channels, out_channels=(3, 32, 24, 40, 112, 320))


@pytest.mark.parametrize("tag", ["imagenet", "advprop", "noisy-student"])
def test_tag_is_downloaded_verified_cached_and_adapted(weights_file: Path, state,
                                                      tmp_path: Path, tag: str) -> None:
    # downloaded, then from the cache with the first convolution adapted to one channel
    testing.check_weights_download(NAME, tag, weights_file, state, tmp_path / "cache",
                                   first_conv_keys="conv_stem.weight")


def test_download_with_a_wrong_digest_is_refused(weights_file: Path, tmp_path: Path) -> None:
    testing.check_wrong_digest_refused(NAME, "imagenet", weights_file, tmp_path / "cache")


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
