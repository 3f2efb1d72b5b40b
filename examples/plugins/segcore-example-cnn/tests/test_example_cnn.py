"""The plugin's own tests: the conformance kit checks the whole encoder contract, and the "demo"
weights load through segcore's chain (tag -> WeightSource -> file:// URL -> cache -> module)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch
from safetensors.torch import save_file
from segcore_example_cnn import GuideCNNEncoder
from segcore_example_cnn.plugin import segcore_encoders

import segcore
from segcore import testing
from segcore.errors import ChecksumError, UnknownOptionError
from segcore.weights import cache_dir, sha256_of

NAME = "guide-cnn"


def test_plugin_is_loaded():
    # SEGCORE_STRICT_PLUGINS is removed inside tests (segcore_isolation): assert the status
    record = next(r for r in segcore.plugin_records() if r.name == "example_cnn")
    assert record.status == "loaded", record.error
    assert NAME in segcore.list_encoders()


def test_follows_the_encoder_contract():
    # depths 3-5, 1/3/4 input channels, output strides 8 and 16, gradients, torch.compile
    testing.check_encoder(NAME, depths=(3, 4, 5), in_channels=(1, 3, 4), dilation=True)


def test_the_core_adapts_and_dilates_what_the_factory_built():
    encoder = segcore.get_encoder(NAME, in_channels=4, depth=5, output_stride=16).eval()
    assert isinstance(encoder, GuideCNNEncoder)
    assert encoder.out_channels == (4, 16, 32, 64, 128, 256)
    assert encoder.output_stride == 16
    with torch.no_grad():
        features = encoder(torch.rand(1, 4, 64, 64))
    assert [tuple(f.shape[-2:]) for f in features] == [(64, 64), (32, 32), (16, 16), (8, 8),
                                                      (4, 4), (4, 4)]


def test_unknown_arguments_are_refused():
    # the spec does not declare accepts_kwargs: width is fixed by its params
    with pytest.raises(UnknownOptionError, match="takes no extra arguments"):
        segcore.get_encoder(NAME, width=8)


def test_preprocessing_of_the_demo_weights():
    assert segcore.get_preprocessing_params(NAME, "demo")["mean"] == [0.5, 0.5, 0.5]
    preprocess = segcore.get_preprocessing_fn(NAME, pretrained="demo")
    x = torch.full((1, 3, 2, 2), 0.75)
    torch.testing.assert_close(preprocess(x, channel_axis=1), torch.ones(1, 3, 2, 2))


@pytest.fixture
def published(tmp_path: Path, segcore_without_plugins) -> tuple[dict[str, torch.Tensor], Path]:
    """The "demo" weights published as a file, and the plugin's spec with its tag pointing at
    that file (its file:// URL and its sha256).

    segcore_without_plugins blocks the installed plugin, so this spec takes its name.
    """
    torch.manual_seed(0)
    state = GuideCNNEncoder().state_dict()
    path = tmp_path / "published" / "guide-cnn-demo.safetensors"
    path.parent.mkdir()
    save_file(state, str(path))
    [spec] = segcore_encoders()
    demo = attrs.evolve(spec.weights["demo"], url=path.as_uri(), sha256=sha256_of(path))
    with testing.specs_installed(encoders=[attrs.evolve(spec, weights={"demo": demo})]):
        yield state, path


def test_demo_weights_are_fetched_into_the_cache_and_loaded(published):
    state, _ = published
    cached = cache_dir() / NAME / "guide-cnn-demo.safetensors"
    assert not cached.exists()  # segcore_isolation: an empty cache
    encoder = segcore.get_encoder(NAME, weights="demo")
    assert cached.is_file() and sha256_of(cached) == sha256_of(published[1])
    loaded = encoder.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, msg=key)
    # the first tag is the default one, and the second time the cached file is used
    published[1].unlink()
    again = segcore.get_encoder(NAME, weights=True)
    torch.testing.assert_close(again.stages[0][0].weight, state["stages.0.0.weight"])


def test_demo_weights_on_one_input_channel_adapt_the_first_convolution(published):
    state, _ = published
    encoder = segcore.get_encoder(NAME, in_channels=1, weights="demo").eval()
    first = encoder.stages[0][0]
    assert first.in_channels == 1 and encoder.out_channels[0] == 1
    # one channel gets the sum of the pretrained RGB kernels; the rest is loaded unchanged
    torch.testing.assert_close(first.weight, state["stages.0.0.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(encoder.stages[4][3].weight, state["stages.4.3.weight"])
    with torch.no_grad():
        features = encoder(torch.rand(2, 1, 64, 64))
    assert [f.shape[1] for f in features] == [1, 16, 32, 64, 128, 256]


def test_a_file_that_does_not_match_the_digest_is_refused(published):
    _, path = published
    path.write_bytes(path.read_bytes() + b"\0")  # the published file changed
    with pytest.raises(ChecksumError, match="expected"):
        segcore.get_encoder(NAME, weights="demo")
    assert not (cache_dir() / NAME / "guide-cnn-demo.safetensors").exists()
