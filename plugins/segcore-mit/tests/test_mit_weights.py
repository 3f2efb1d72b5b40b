"""Loading weights into the MiT encoders: local files, the cache, first-conv adaptation,
downloads (from a server the test starts on 127.0.0.1)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import segcore
from segcore import testing
from segcore.errors import WeightsNotFoundError
from segcore.factory import get_encoder_spec
from segcore.weights import cached_path

FIRST_CONV = "patch_embed1.proj.weight"


# mit_b0, every tensor random (norm weights around 1)
state, weights_file = testing.weights_fixtures("mit_b0", filename="mit_b0-test.safetensors",
                                               positive=("norm",))


def test_remap_state_dict_drops_only_the_classifier(state) -> None:
    encoder = segcore.get_encoder("mit_b0", depth=3)
    remapped = encoder.remap_state_dict({**state, "head.weight": torch.zeros(1),
                                         "head.bias": torch.zeros(1)})
    assert remapped.keys() == state.keys()
    assert all(remapped[k] is state[k] for k in state)


def test_tag_loads_the_file_in_the_cache(weights_file: Path, state, tmp_path: Path,
                                         monkeypatch) -> None:
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    spec = get_encoder_spec("mit_b0")
    path = cached_path(spec, "imagenet", spec.weights["imagenet"])
    assert path == tmp_path / "cache" / "mit_b0" / "mit_b0.imagenet.safetensors"
    with pytest.raises(WeightsNotFoundError) as error:  # not there yet: says where to put it
        segcore.get_encoder("mit_b0", weights="imagenet")
    assert str(path) in str(error.value) and spec.weights["imagenet"].url in str(error.value)
    path.parent.mkdir(parents=True)
    path.write_bytes(weights_file.read_bytes())
    testing.assert_same_state(segcore.get_encoder("mit_b0", weights="imagenet"), state)
    if importlib.util.find_spec("segcore_segformer") is None:
        return  # the package's tests alone (core + mit): the encoder half is what they can check
    model = segcore.Segformer(encoder_name="mit_b0", encoder_weights="imagenet", classes=2)
    testing.assert_same_state(model.encoder, state)


class TestWeights(testing.EncoderWeightsSuite):
    # One channel: the sum of the RGB kernels. Four: R, G, B, R scaled by 3/4, so that an
    # input whose 4th channel repeats the 1st gives 3/4 * (original + channel-0 response) + bias.
    encoder_name = "mit_b0"
    first_conv_keys = FIRST_CONV
    classifier = {"head.weight": torch.randn(1000, 256), "head.bias": torch.randn(1000)}
    out_channels = (3, 0, 32, 64, 160, 256)
    conv_reference = {"stride": 4, "padding": 3}
    adapted_size = 64
    # downloaded for one input channel, then the default tag (True) from the cache
    download_in_channels = (1, 3)
    requested = ("imagenet", True)
