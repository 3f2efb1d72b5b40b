"""Weights of the EfficientNet encoders: tag -> source -> cache -> module, and first-conv set-up."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import torch
from safetensors.torch import save_file

import segcore
from segcore import testing
from segcore.errors import ChecksumError, WeightsError
from segcore.factory import get_encoder_spec
from segcore.weights import sha256_of

NAME = "efficientnet-b0"


def _random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """An efficientnet-b0 state dict whose every tensor (BN statistics included) is random."""
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for key, value in segcore.get_encoder(NAME).state_dict().items():
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
def classifier_file(tmp_path: Path, state) -> Path:
    """A file as SMP/efficientnet-pytorch publish them: the encoder plus the ``_fc`` classifier."""
    path = tmp_path / "efficientnet-b0-test.safetensors"
    save_file({**state, "_fc.weight": torch.randn(1000, 1280), "_fc.bias": torch.randn(1000)},
              str(path))
    return path


def _assert_same_state(encoder: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def _installed(tag: str, url: str, sha256: str | None, name: str):
    base = get_encoder_spec(NAME)
    source = attrs.evolve(base.weights[tag], url=url, sha256=sha256)
    return testing.specs_installed(encoders=[attrs.evolve(base, name=name,
                                                          weights={tag: source})])


def test_remap_drops_the_classifier_and_keeps_everything_else(state) -> None:
    encoder = segcore.get_encoder(NAME)
    extra = {"_fc.weight": torch.zeros(2, 2), "_fc.bias": torch.zeros(2)}
    assert encoder.remap_state_dict({**state, **extra}).keys() == state.keys()


def test_file_tag_loads_exactly_and_is_cached(classifier_file: Path, state, tmp_path) -> None:
    name = "efficientnet-b0-file-test"
    with _installed("advprop", classifier_file.as_uri(), sha256_of(classifier_file), name):
        encoder = segcore.get_encoder(name, weights="advprop")
        _assert_same_state(encoder, state)
        cached = tmp_path / "segcore-cache" / name / "efficientnet-b0.advprop.safetensors"
        assert cached.is_file()
        classifier_file.unlink()                   # the source is gone: the cache is used
        _assert_same_state(segcore.get_encoder(name, weights="advprop"), state)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_derived_from_the_rgb_kernel(classifier_file: Path, state,
                                                   in_channels: int) -> None:
    name = f"efficientnet-b0-channels-{in_channels}"
    with _installed("imagenet", classifier_file.as_uri(), sha256_of(classifier_file), name):
        encoder = segcore.get_encoder(name, in_channels=in_channels, weights="imagenet")
    kernel = state["_conv_stem.weight"]
    if in_channels == 1:
        expected = kernel.sum(1, keepdim=True)
    else:
        expected = torch.stack([kernel[:, 0], kernel[:, 1], kernel[:, 2], kernel[:, 0]], 1) * 0.75
    torch.testing.assert_close(encoder._conv_stem.weight.detach(), expected)
    _assert_same_state(encoder, {**state, "_conv_stem.weight": expected})
    features = encoder.eval()(torch.randn(1, in_channels, 64, 64))
    assert [f.shape[1] for f in features] == [in_channels, 32, 24, 40, 112, 320]


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
def server(classifier_file: Path, monkeypatch) -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"payload": classifier_file.read_bytes(),
                                            "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/model.safetensors", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tag_is_downloaded_verified_and_cached(server, classifier_file: Path, state,
                                               tmp_path: Path) -> None:
    url, handler = server
    digest = hashlib.sha256(classifier_file.read_bytes()).hexdigest()
    name = "efficientnet-b0-download-test"
    with _installed("imagenet", url, digest, name):
        _assert_same_state(segcore.get_encoder(name, weights="imagenet"), state)
        cached = tmp_path / "segcore-cache" / name / "efficientnet-b0.imagenet.safetensors"
        assert cached.is_file()
        _assert_same_state(segcore.get_encoder(name, weights=True), state)  # default tag, cached
    assert handler.requests == ["/model.safetensors"]


def test_download_with_a_wrong_digest_is_refused(server, tmp_path: Path) -> None:
    url, _ = server
    name = "efficientnet-b0-bad-digest"
    with _installed("imagenet", url, "0" * 64, name), pytest.raises(ChecksumError):
        segcore.get_encoder(name, weights="imagenet")
    assert not (tmp_path / "segcore-cache" / name / "efficientnet-b0.imagenet.safetensors"
                ).exists()
