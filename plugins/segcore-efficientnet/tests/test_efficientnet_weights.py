"""Weights of the EfficientNet encoders: tag -> source -> cache -> module, and first-conv set-up."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch

import segcore
from segcore import testing
from segcore.errors import WeightsError
from segcore.factory import get_encoder_spec
from segcore.weights import sha256_of

NAME = "efficientnet-b0"
# files as SMP/efficientnet-pytorch publish them: the encoder plus the ``_fc`` classifier
CLASSIFIER = {"_fc.weight": torch.randn(1000, 1280), "_fc.bias": torch.randn(1000)}
state, weights_file = testing.weights_fixtures(NAME, extra=CLASSIFIER,
                                               filename="efficientnet-b0-test.safetensors")


def _installed(tag: str, url: str, sha256: str | None, name: str):
    base = get_encoder_spec(NAME)
    source = attrs.evolve(base.weights[tag], url=url, sha256=sha256)
    return testing.specs_installed(encoders=[attrs.evolve(base, name=name,
                                                          weights={tag: source})])


def test_remap_drops_the_classifier_and_keeps_everything_else(tmp_path: Path, state) -> None:
    testing.check_classifier_file_loads(NAME, state, CLASSIFIER, tmp_path / "classifier.pth")


def test_file_tag_loads_exactly_and_is_cached(weights_file: Path, state, tmp_path) -> None:
    name = "efficientnet-b0-file-test"
    with _installed("advprop", weights_file.as_uri(), sha256_of(weights_file), name):
        encoder = segcore.get_encoder(name, weights="advprop")
        testing.assert_same_state(encoder, state)
        cached = tmp_path / "segcore-cache" / name / "efficientnet-b0.advprop.safetensors"
        assert cached.is_file()
        weights_file.unlink()                   # the source is gone: the cache is used
        testing.assert_same_state(segcore.get_encoder(name, weights="advprop"), state)


def test_preprocessing_of_each_tag() -> None:
    assert segcore.get_preprocessing_params(NAME)["mean"] == [0.485, 0.456, 0.406]
    advprop = segcore.get_preprocessing_params("efficientnet-b7", pretrained="advprop")
    assert advprop == {"input_space": "RGB", "input_range": [0.0, 1.0],
                       "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    preprocess = segcore.get_preprocessing_fn("efficientnet-b3", pretrained="advprop")
    image = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(preprocess(image, channel_axis=1), image * 2 - 1)


def test_offline_missing_file_names_the_cache_path(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    with pytest.raises(WeightsError) as error:
        segcore.get_encoder("efficientnet-b2", weights="imagenet")
    assert "efficientnet-b2.imagenet.safetensors" in str(error.value)
    assert str(tmp_path / "segcore-cache" / "efficientnet-b2") in str(error.value)


class TestWeights(testing.EncoderWeightsSuite):
    encoder_name = NAME
    first_conv_keys = "_conv_stem.weight"
    out_channels = (3, 32, 24, 40, 112, 320)
    adapted_size = 64
    requested = ("imagenet", True)  # downloaded, then the default tag (True) from the cache
