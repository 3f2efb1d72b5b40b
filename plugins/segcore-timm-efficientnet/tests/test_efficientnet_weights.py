"""Weights for the timm EfficientNets: tag -> source -> download/cache -> module, remapping of
classifier files, and first-convolution adaptation."""

from __future__ import annotations

import hashlib
import http.server
import re
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

NAME = "timm-efficientnet-b0"


def _random_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of ``name`` whose every tensor (BN statistics included) is random."""
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for key, value in segcore.get_encoder(name).state_dict().items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=generator) + 0.5
            result[key] = noise if "running_var" in key else noise - 1.0
        else:
            result[key] = value.clone() + 3
    return result


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return _random_state(NAME)


@pytest.fixture()
def weights_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "b0.safetensors"
    save_file(state, str(path))
    return path


def _assert_state(encoder: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def test_file_loads_exactly(weights_file: Path, state) -> None:
    _assert_state(segcore.get_encoder(NAME, weights=str(weights_file)), state)


def test_classifier_keys_of_timm_files_are_dropped(tmp_path: Path, state) -> None:
    path = tmp_path / "b0-classifier.pth"
    torch.save({**state, "classifier.weight": torch.randn(1000, 1280),
                "classifier.bias": torch.randn(1000)}, path)
    _assert_state(segcore.get_encoder(NAME, weights=path), state)
    encoder = segcore.get_encoder(NAME)
    assert set(encoder.remap_state_dict({**state, "classifier.bias": torch.zeros(1)})) == set(state)


def test_other_unexpected_keys_are_refused(tmp_path: Path, state) -> None:
    path = tmp_path / "b0-extra.safetensors"
    save_file({**state, "head.fc.weight": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match=re.escape("head.fc.weight")):
        segcore.get_encoder(NAME, weights=path)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_convolution_is_derived_from_the_rgb_kernel(weights_file: Path, state,
                                                          in_channels: int) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=in_channels, weights=weights_file)
    kernel = state["conv_stem.weight"]
    if in_channels == 1:
        expected = kernel.sum(1, keepdim=True)
    else:
        expected = torch.cat([kernel, kernel[:, :1]], 1) * (3 / 4)
    torch.testing.assert_close(encoder.conv_stem.weight.detach(), expected)
    _assert_state(encoder, {**state, "conv_stem.weight": expected})
    assert encoder.out_channels[0] == in_channels
    with torch.no_grad():
        assert encoder.eval()(torch.randn(1, in_channels, 32, 32))[1].shape == (1, 32, 16, 16)


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
        yield f"http://127.0.0.1:{httpd.server_address[1]}/model.safetensors", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("tag", ["imagenet", "advprop", "noisy-student"])
def test_tag_is_downloaded_verified_cached_and_adapted(server, weights_file: Path, state,
                                                      tmp_path: Path, monkeypatch,
                                                      tag: str) -> None:
    url, handler = server
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    base = get_encoder_spec(NAME)
    source = attrs.evolve(base.weights[tag], url=url, sha256=digest)
    spec = attrs.evolve(base, name="b0-download-test", weights={tag: source})
    with testing.specs_installed(encoders=[spec]):
        _assert_state(segcore.get_encoder("b0-download-test", weights=tag), state)
        cached = tmp_path / "cache" / "b0-download-test" / f"{NAME}.{tag}.safetensors"
        assert cached.is_file()
        one = segcore.get_encoder("b0-download-test", in_channels=1, weights=tag)  # cached
        torch.testing.assert_close(one.conv_stem.weight.detach(),
                                   state["conv_stem.weight"].sum(1, keepdim=True))
    assert handler.requests == ["/model.safetensors"]


def test_download_with_a_wrong_digest_is_refused(server, tmp_path: Path, monkeypatch) -> None:
    url, _ = server
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    base = get_encoder_spec(NAME)
    source = attrs.evolve(base.weights["imagenet"], url=url, sha256="0" * 64)
    spec = attrs.evolve(base, name="b0-bad-digest", weights={"imagenet": source})
    with testing.specs_installed(encoders=[spec]), pytest.raises(ChecksumError):
        segcore.get_encoder("b0-bad-digest", weights="imagenet")
    assert not (tmp_path / "cache" / "b0-bad-digest" / f"{NAME}.imagenet.safetensors").exists()


def test_lite_smp_spelling_reads_the_cache_file_of_the_documented_name(tmp_path: Path,
                                                                        monkeypatch) -> None:
    # Offline: the file put by hand where the error says is what the tag loads, under the
    # documented (canonical) name whichever spelling asks for it.
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    alias, name = "timm-tf_efficientnet_lite0", "timm-efficientnet-lite0"
    with pytest.raises(WeightsError, match=re.escape(f"{name}.imagenet.safetensors")):
        segcore.get_encoder(alias, weights="imagenet")
    state = _random_state(name, seed=1)
    folder = tmp_path / "cache" / name
    folder.mkdir(parents=True)
    save_file(state, str(folder / f"{name}.imagenet.safetensors"))
    _assert_state(segcore.get_encoder(alias, weights="imagenet"), state)
    _assert_state(segcore.get_encoder(name, weights="imagenet"), state)
