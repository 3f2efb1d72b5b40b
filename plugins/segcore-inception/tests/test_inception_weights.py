"""Weights: tag -> source -> cache -> module, classifier keys, first-convolution adaptation.

Downloads cannot reach the hub here: the tests write the files and serve one over HTTP on
127.0.0.1. Xception (the smallest, 83 MB in float32) carries the file tests; the classifier
keys of the Inception files are checked on ``remap_state_dict`` directly.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch

import segcore
from segcore import testing
from segcore.factory import get_encoder_spec
from segcore.weights import cache_dir, sha256_of

state, weights_file = testing.weights_fixtures("xception", filename="xception-test.safetensors",
                                               file_scope="module", depth=1)


def test_tag_through_a_file_source_into_the_cache(weights_file: Path, state,
                                                  segcore_without_plugins) -> None:
    from segcore_inception.plugin import segcore_encoders

    [spec] = [s for s in segcore_encoders() if s.name == "xception"]
    source = attrs.evolve(spec.weights["imagenet"], url=weights_file.as_uri(),
                          sha256=sha256_of(weights_file))
    with testing.specs_installed(encoders=[attrs.evolve(spec, weights={"imagenet": source})]):
        encoder = segcore.get_encoder("xception", weights="imagenet")
        testing.assert_same_state(encoder, state)
        assert (cache_dir() / "xception" / "xception.imagenet.safetensors").is_file()
        params = segcore.get_preprocessing_params("xception", pretrained="imagenet")
        assert params["mean"] == [0.5, 0.5, 0.5] and params["std"] == [0.5, 0.5, 0.5]


def test_classifier_file_with_fc_keys_loads(tmp_path: Path, state) -> None:
    classifier = {"fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)}
    testing.check_classifier_file_loads("xception", state, classifier,
                                        tmp_path / "xception-classifier.pth")


@pytest.mark.parametrize("name", ["inceptionv4", "inceptionresnetv2", "xception"])
def test_remap_drops_the_imagenet_classifier(name: str) -> None:
    encoder = segcore.get_encoder(name, depth=1)
    state = encoder.state_dict()
    extra = {"last_linear.weight": torch.zeros(1001, 1536), "last_linear.bias": torch.zeros(1001)}
    if name == "xception":
        extra |= {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    remapped = encoder.remap_state_dict({**state, **extra})
    assert set(remapped) == set(state)
    encoder.load_state_dict(remapped, strict=True)


class TestXceptionWeights(testing.EncoderWeightsSuite):
    encoder_name = "xception"
    first_conv_keys = "conv1.weight"
    out_channels = (3, 64, 128, 256, 728, 2048)
    conv_reference = {"stride": 2, "padding": 1}
    requested = (True, "imagenet")


@pytest.mark.parametrize("name", ["inceptionv4", "inceptionresnetv2"])
def test_first_convolution_of_the_inceptions_is_adapted(name: str) -> None:
    # What the core does after loading a file (the file chain is tested on xception above):
    # the stem convolution, not another one, takes the summed kernel.
    encoder = segcore.get_encoder(name, depth=1)
    key = "features.0.conv.weight" if name == "inceptionv4" else "conv2d_1a.conv.weight"
    kernel = encoder.state_dict()[key].clone()
    encoder.set_in_channels(1, pretrained=True)
    torch.testing.assert_close(encoder.state_dict()[key], kernel.sum(1, keepdim=True))
    assert encoder(torch.randn(1, 1, 16, 16))[1].shape == (1, 64, 8, 8)


def test_imagenet_background_sources_are_distinct_files() -> None:
    spec = get_encoder_spec("inceptionresnetv2")
    imagenet, background = spec.weights["imagenet"], spec.weights["imagenet+background"]
    assert "/smp-hub/inceptionresnetv2.imagenet-background/" in background.url
    assert imagenet.url != background.url
    assert imagenet.cache_filename(spec.name, "imagenet") != \
        background.cache_filename(spec.name, "imagenet+background")
