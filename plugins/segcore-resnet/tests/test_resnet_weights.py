"""Loading weights into the ResNet encoders: local files, first-conv adaptation, downloads."""

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


def _random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A resnet18 state dict whose every tensor (BN statistics included) is random."""
    generator = torch.Generator().manual_seed(seed)
    state = segcore.get_encoder("resnet18").state_dict()
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
def safetensors_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "resnet18-test.safetensors"
    save_file(state, str(path))
    return path


def _assert_same_state(encoder: torch.nn.Module, expected: dict[str, torch.Tensor],
                       skip: tuple[str, ...] = ()) -> None:
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if key not in skip:
            assert torch.equal(actual[key], value), key


def test_safetensors_file_loads_exactly(safetensors_file: Path, state) -> None:
    encoder = segcore.get_encoder("resnet18", weights=str(safetensors_file))
    _assert_same_state(encoder, state)


def test_classifier_file_with_fc_keys_loads(tmp_path: Path, state) -> None:
    path = tmp_path / "resnet18-classifier.pth"
    torch.save({**state, "fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)},
               path)
    encoder = segcore.get_encoder("resnet18", weights=path)
    _assert_same_state(encoder, state)


def test_one_input_channel_sums_the_first_kernel(safetensors_file: Path, state) -> None:
    encoder = segcore.get_encoder("resnet18", in_channels=1, weights=safetensors_file)
    expected = state["conv1.weight"][:, 0:1] + state["conv1.weight"][:, 1:2] \
        + state["conv1.weight"][:, 2:3]
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected)
    _assert_same_state(encoder, {**state, "conv1.weight": expected})
    assert encoder(torch.randn(2, 1, 64, 64))[1].shape == (2, 64, 32, 32)


def test_four_input_channels_cycle_and_rescale(safetensors_file: Path, state) -> None:
    encoder = segcore.get_encoder("resnet18", in_channels=4, weights=safetensors_file)
    kernel = state["conv1.weight"]
    expected = torch.stack([kernel[:, 0], kernel[:, 1], kernel[:, 2], kernel[:, 0]], 1) * 0.75
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected)
    # An input whose 4th channel repeats the 1st gives 3/4 * (original + channel-0 response).
    x = torch.randn(1, 3, 32, 32)
    four = torch.cat([x, x[:, :1]], 1)
    original = torch.nn.functional.conv2d(x, kernel, stride=2, padding=3)
    extra = torch.nn.functional.conv2d(x[:, :1], kernel[:, :1], stride=2, padding=3)
    torch.testing.assert_close(encoder.conv1(four), 0.75 * (original + extra),
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
    base = get_encoder_spec("resnet18")
    source = attrs.evolve(base.weights["sswl"], url=url, sha256=digest)
    spec = attrs.evolve(base, name="resnet18-download-test", weights={"sswl": source})
    with testing.specs_installed(encoders=[spec]):
        encoder = segcore.get_encoder("resnet18-download-test", weights="swsl")
        _assert_same_state(encoder, state)
        cached = tmp_path / "cache" / "resnet18-download-test" / "resnet18.sswl.safetensors"
        assert cached.is_file()
        segcore.get_encoder("resnet18-download-test", weights="sswl")  # from the cache
    assert handler.requests == ["/model.safetensors"]


def test_download_with_a_wrong_digest_is_refused(server, tmp_path: Path, monkeypatch) -> None:
    url, _ = server
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    base = get_encoder_spec("resnet18")
    source = WeightSource(url=url, sha256="0" * 64, filename="resnet18.imagenet.safetensors")
    spec = attrs.evolve(base, name="resnet18-bad-digest", weights={"imagenet": source},
                        weight_aliases={})
    with testing.specs_installed(encoders=[spec]), pytest.raises(ChecksumError):
        segcore.get_encoder("resnet18-bad-digest", weights="imagenet")
    assert not (tmp_path / "cache" / "resnet18-bad-digest" / "resnet18.imagenet.safetensors"
                ).exists()
