"""Loading weights into the SE-Net encoders: tag -> source -> cache -> module, first-conv
adaptation, classifier files, downloads from a local HTTP server.

se_resnext50_32x4d stands for the family (the quickest to build; the weight chain is the
same for every name: one spec shape, one factory, one ``remap_state_dict``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import torch
from segcore_senet.plugin import segcore_encoders

import segcore
from segcore import testing
from segcore.errors import WeightsError
from segcore.specs import EncoderSpec
from segcore.weights import cache_dir, sha256_of

NAME = "se_resnext50_32x4d"
FIRST_CONV = "layer0.conv1.weight"
# the path of SMP's pinned hub file, served locally by the download tests
HUB_PATH = (f"/smp-hub/{NAME}.imagenet/resolve/0123456789abcdef0123456789abcdef01234567/"
            "model.safetensors")


# the file as SMP's hub has it: a safetensors state dict of the encoder
state, weights_file = testing.weights_fixtures(NAME, filename="model.safetensors", depth=1)


def _own_spec(**imagenet_changes) -> EncoderSpec:
    """This plugin's spec of NAME, its "imagenet" source changed (url, sha256...)."""
    spec = next(s for s in segcore_encoders() if s.name == NAME)
    imagenet = attrs.evolve(spec.weights["imagenet"], **imagenet_changes)
    return attrs.evolve(spec, weights={"imagenet": imagenet})


@pytest.fixture()
def published(weights_file: Path, segcore_without_plugins) -> Iterator[Path]:
    """The plugin's own spec, its "imagenet" tag pointing at the test's file (file:// URL)."""
    spec = _own_spec(url=weights_file.as_uri(), sha256=sha256_of(weights_file))
    with testing.specs_installed(encoders=[spec]):
        yield weights_file


def test_imagenet_tag_goes_through_the_cache(published: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, weights="imagenet")
    testing.assert_same_state(encoder, state)
    # the cache file is the spec's filename under SEGCORE_CACHE/<encoder>/
    cached = cache_dir() / NAME / f"{NAME}.imagenet.safetensors"
    assert cached.is_file() and sha256_of(cached) == sha256_of(published)
    published.unlink()  # the source is gone: the cached copy is used
    testing.assert_same_state(segcore.get_encoder(NAME, weights="imagenet"), state)


def test_encoder_weights_true_is_the_imagenet_tag(published: Path, state) -> None:
    testing.assert_same_state(segcore.get_encoder(NAME, weights=True), state)


def test_classifier_file_with_last_linear_keys_loads(tmp_path: Path, state) -> None:
    # Cadene's pretrainedmodels files (and SMP's hub copies) may carry the classifier.
    classifier = {"last_linear.weight": torch.randn(1000, 2048),
                  "last_linear.bias": torch.randn(1000)}
    testing.check_classifier_file_loads(NAME, state, classifier,
                                        tmp_path / "se_resnext50_32x4d-classifier.pth")


# One channel: the sum of the RGB kernels. Four: R, G, B, R scaled by 3/4, so that an input
# whose 4th channel repeats the 1st gives 3/4 * (original + channel-0 response).
@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_derived_from_the_rgb_kernel(published: Path, state,
                                                   in_channels: int) -> None:
    testing.check_first_conv_adaptation(NAME, "imagenet", state, FIRST_CONV, in_channels,
                                        out_channels=(3, 64, 256, 512, 1024, 2048),
                                        conv_reference={"stride": 2, "padding": 3})


def test_tag_is_downloaded_verified_and_cached(weights_file: Path, state, tmp_path: Path,
                                               segcore_without_plugins) -> None:
    testing.check_weights_download(NAME, "imagenet", weights_file, state, tmp_path / "cache",
                                   first_conv_keys=FIRST_CONV, spec=_own_spec(),
                                   installed_as=NAME, url_path=HUB_PATH)


def test_download_with_a_wrong_digest_is_refused(weights_file: Path, tmp_path: Path,
                                                 segcore_without_plugins) -> None:
    testing.check_wrong_digest_refused(NAME, "imagenet", weights_file, tmp_path / "cache",
                                       spec=_own_spec(), installed_as=NAME, url_path=HUB_PATH)


def test_offline_without_a_cached_file_says_where_to_put_it(segcore_offline) -> None:
    with pytest.raises(WeightsError) as error:
        segcore.get_encoder(NAME, weights="imagenet")
    assert f"{NAME}.imagenet.safetensors" in str(error.value)
