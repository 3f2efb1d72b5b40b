"""Loading weights into the SE-Net encoders: tag -> source -> cache -> module, first-conv
adaptation, classifier files, downloads from a local HTTP server.

se_resnext50_32x4d stands for the family (the quickest to build; the weight chain is the
same for every name: one spec shape, one factory, one ``remap_state_dict``).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import pytest
import torch
from safetensors.torch import save_file
from segcore_senet.plugin import segcore_encoders

import segcore
from segcore import testing
from segcore.errors import ChecksumError, WeightsError
from segcore.specs import EncoderSpec
from segcore.weights import cache_dir, sha256_of

NAME = "se_resnext50_32x4d"
FIRST_CONV = "layer0.conv1.weight"


def _random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of NAME whose every tensor (BN statistics included) is random."""
    generator = torch.Generator().manual_seed(seed)
    state = segcore.get_encoder(NAME, depth=1).state_dict()
    result = {}
    for key, value in state.items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=generator) + 0.5
            result[key] = noise if "running_var" in key else noise - 1.0
        else:
            result[key] = value.clone() + 7
    return result


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return _random_state()


@pytest.fixture()
def weights_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    """The file as SMP's hub has it: a safetensors state dict of the encoder."""
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    return path


def _assert_same_state(encoder: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


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
    _assert_same_state(encoder, state)
    # the cache file is the spec's filename under SEGCORE_CACHE/<encoder>/
    cached = cache_dir() / NAME / f"{NAME}.imagenet.safetensors"
    assert cached.is_file() and sha256_of(cached) == sha256_of(published)
    published.unlink()  # the source is gone: the cached copy is used
    _assert_same_state(segcore.get_encoder(NAME, weights="imagenet"), state)


def test_encoder_weights_true_is_the_imagenet_tag(published: Path, state) -> None:
    _assert_same_state(segcore.get_encoder(NAME, weights=True), state)


def test_classifier_file_with_last_linear_keys_loads(tmp_path: Path, state) -> None:
    # Cadene's pretrainedmodels files (and SMP's hub copies) may carry the classifier.
    path = tmp_path / "se_resnext50_32x4d-classifier.pth"
    torch.save({**state, "last_linear.weight": torch.randn(1000, 2048),
                "last_linear.bias": torch.randn(1000)}, path)
    _assert_same_state(segcore.get_encoder(NAME, weights=path), state)


def test_one_input_channel_sums_the_first_kernel(published: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=1, weights="imagenet")
    kernel = state[FIRST_CONV]
    expected = kernel[:, 0:1] + kernel[:, 1:2] + kernel[:, 2:3]
    torch.testing.assert_close(encoder.layer0.conv1.weight.detach(), expected)
    _assert_same_state(encoder, {**state, FIRST_CONV: expected})
    with torch.no_grad():
        assert encoder.eval()(torch.randn(1, 1, 32, 32))[-1].shape == (1, 2048, 1, 1)


def test_four_input_channels_cycle_and_rescale(published: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=4, weights="imagenet", depth=1).eval()
    kernel = state[FIRST_CONV]
    expected = torch.stack([kernel[:, 0], kernel[:, 1], kernel[:, 2], kernel[:, 0]], 1) * 0.75
    torch.testing.assert_close(encoder.layer0.conv1.weight.detach(), expected)
    # An input whose 4th channel repeats the 1st gives 3/4 * (original + channel-0 response).
    x = torch.randn(1, 3, 32, 32)
    four = torch.cat([x, x[:, :1]], 1)
    original = torch.nn.functional.conv2d(x, kernel, stride=2, padding=3)
    extra = torch.nn.functional.conv2d(x[:, :1], kernel[:, :1], stride=2, padding=3)
    torch.testing.assert_close(encoder.layer0.conv1(four), 0.75 * (original + extra),
                               atol=1e-5, rtol=1e-5)


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server(weights_file: Path, monkeypatch) -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"payload": weights_file.read_bytes(),
                                            "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    try:
        # the path of SMP's pinned hub file, served locally
        yield (f"http://127.0.0.1:{httpd.server_address[1]}/smp-hub/{NAME}.imagenet/resolve/"
               f"0123456789abcdef0123456789abcdef01234567/model.safetensors"), handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tag_is_downloaded_verified_and_cached(server, weights_file: Path, state,
                                               segcore_without_plugins) -> None:
    url, handler = server
    spec = _own_spec(url=url, sha256=sha256_of(weights_file))
    with testing.specs_installed(encoders=[spec]):
        _assert_same_state(segcore.get_encoder(NAME, weights="imagenet"), state)
        assert (cache_dir() / NAME / f"{NAME}.imagenet.safetensors").is_file()
        segcore.get_encoder(NAME, weights="imagenet", depth=1)  # from the cache
    assert handler.requests == [urlsplit(url).path]  # one download


def test_download_with_a_wrong_digest_is_refused(server, segcore_without_plugins) -> None:
    url, _ = server
    with testing.specs_installed(encoders=[_own_spec(url=url, sha256="0" * 64)]), \
            pytest.raises(ChecksumError):
        segcore.get_encoder(NAME, weights="imagenet")
    assert not (cache_dir() / NAME / f"{NAME}.imagenet.safetensors").exists()


def test_offline_without_a_cached_file_says_where_to_put_it(segcore_offline) -> None:
    with pytest.raises(WeightsError) as error:
        segcore.get_encoder(NAME, weights="imagenet")
    assert f"{NAME}.imagenet.safetensors" in str(error.value)
