"""Loading weights into the MobileNetV2 encoder: local files, classifier files, first-conv
adaptation, the tag -> source -> download -> cache chain."""

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
from segcore.errors import ChecksumError
from segcore.factory import get_encoder_spec
from segcore.specs import WeightSource

NAME = "mobilenet_v2"


def _random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A mobilenet_v2 state dict whose every tensor (BN statistics included) is random."""
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
def safetensors_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "mobilenet_v2-test.safetensors"
    save_file(state, str(path))
    return path


def _assert_same_state(encoder: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def test_safetensors_file_loads_exactly(safetensors_file: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, weights=str(safetensors_file))
    _assert_same_state(encoder, state)


def test_torchvision_classifier_file_loads(tmp_path: Path, state) -> None:
    path = tmp_path / "mobilenet_v2-classifier.pth"
    classifier = {"classifier.1.weight": torch.randn(10, 1280),
                  "classifier.1.bias": torch.randn(10)}
    torch.save({**state, **classifier}, path)
    encoder = segcore.get_encoder(NAME, weights=path)
    _assert_same_state(encoder, state)
    assert encoder.remap_state_dict({**state, **classifier}).keys() == state.keys()


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_is_derived_from_the_rgb_kernel(safetensors_file: Path, state,
                                                   in_channels: int) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=in_channels, weights=safetensors_file)
    kernel = state["features.0.0.weight"]
    if in_channels == 1:
        expected = kernel[:, 0:1] + kernel[:, 1:2] + kernel[:, 2:3]
    else:
        expected = torch.stack([kernel[:, 0], kernel[:, 1], kernel[:, 2], kernel[:, 0]], 1) * 0.75
    torch.testing.assert_close(encoder.features[0][0].weight.detach(), expected)
    _assert_same_state(encoder, {**state, "features.0.0.weight": expected})
    features = encoder(torch.randn(2, in_channels, 32, 32))
    assert features[0].shape[1] == in_channels and encoder.out_channels[0] == in_channels
    assert features[1].shape == (2, 16, 16, 16)


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
def server(safetensors_file: Path, monkeypatch) -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"payload": safetensors_file.read_bytes(),
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


def test_tag_is_downloaded_verified_and_cached(server, safetensors_file: Path, state,
                                               tmp_path: Path, monkeypatch) -> None:
    url, handler = server
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    digest = hashlib.sha256(safetensors_file.read_bytes()).hexdigest()
    base = get_encoder_spec(NAME)
    source = attrs.evolve(base.weights["imagenet"], url=url, sha256=digest)
    spec = attrs.evolve(base, name="mobilenet_v2-download-test", weights={"imagenet": source})
    with testing.specs_installed(encoders=[spec]):
        encoder = segcore.get_encoder("mobilenet_v2-download-test", weights="imagenet",
                                      in_channels=1)
        _assert_same_state(encoder, {**state, "features.0.0.weight":
                                     state["features.0.0.weight"].sum(1, keepdim=True)})
        cached = (tmp_path / "cache" / "mobilenet_v2-download-test"
                  / "mobilenet_v2.imagenet.safetensors")
        assert cached.is_file()
        encoder = segcore.get_encoder("mobilenet_v2-download-test", weights="imagenet")  # cached
        _assert_same_state(encoder, state)
        assert segcore.get_preprocessing_params("mobilenet_v2-download-test")["mean"] == \
            [0.485, 0.456, 0.406]
    assert handler.requests == ["/model.safetensors"]


def test_download_with_a_wrong_digest_is_refused(server, tmp_path: Path, monkeypatch) -> None:
    url, _ = server
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    base = get_encoder_spec(NAME)
    source = WeightSource(url=url, sha256="0" * 64, filename="mobilenet_v2.imagenet.safetensors")
    spec = attrs.evolve(base, name="mobilenet_v2-bad-digest", weights={"imagenet": source})
    with testing.specs_installed(encoders=[spec]), pytest.raises(ChecksumError):
        segcore.get_encoder("mobilenet_v2-bad-digest", weights="imagenet")
    assert not (tmp_path / "cache" / "mobilenet_v2-bad-digest" / "mobilenet_v2.imagenet.safetensors"
                ).exists()
