"""Loading weights into the MobileOne encoders: tag -> source -> cache -> module, stem convs."""

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
from segcore_mobileone import reparameterize_model

import segcore
from segcore import testing
from segcore.errors import ChecksumError
from segcore.factory import get_encoder_spec
from segcore.specs import WeightSource

NAME = "mobileone_s0"
TAG = "imagenet"
STEM_KERNELS = ("stage0.rbr_conv.0.conv.weight", "stage0.rbr_scale.conv.weight")


def _random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A mobileone_s0 state dict whose every tensor (BN statistics included) is random."""
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for key, value in segcore.get_encoder(NAME).state_dict().items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=generator) + 0.5
            result[key] = noise if "running_var" in key else noise - 1.0
        else:
            result[key] = value.clone() + 3
    return result


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return _random_state()


@pytest.fixture()
def weights_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    """A classification file: the encoder's weights and the classifier (``linear.*``)."""
    path = tmp_path / "model.safetensors"
    save_file({**state, "linear.weight": torch.randn(1000, 1024),
               "linear.bias": torch.randn(1000)}, str(path))
    return path


def _assert_same_state(encoder: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def test_file_with_classifier_keys_loads_exactly(weights_file: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, weights=str(weights_file))
    _assert_same_state(encoder, state)


def test_remap_drops_only_the_classifier(state) -> None:
    encoder = segcore.get_encoder(NAME)
    remapped = encoder.remap_state_dict({**state, "linear.weight": torch.zeros(1)})
    assert remapped.keys() == state.keys()


def test_one_input_channel_sums_every_stem_kernel(weights_file: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=1, weights=weights_file)
    expected = {key: state[key].sum(1, keepdim=True) for key in STEM_KERNELS}
    _assert_same_state(encoder, {**state, **expected})
    assert encoder.in_channels == 1 and encoder.out_channels[0] == 1
    with torch.no_grad():
        assert encoder.eval()(torch.randn(1, 1, 32, 32))[1].shape == (1, 48, 16, 16)


def test_four_input_channels_cycle_and_rescale(weights_file: Path, state) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=4, weights=weights_file)
    actual = encoder.state_dict()
    for key in STEM_KERNELS:
        kernel = state[key]
        expected = torch.stack([kernel[:, 0], kernel[:, 1], kernel[:, 2], kernel[:, 0]], 1)
        torch.testing.assert_close(actual[key], expected * 0.75)


def test_pretrained_one_channel_encoder_fuses_with_the_same_features(weights_file) -> None:
    encoder = segcore.get_encoder(NAME, in_channels=1, weights=weights_file, depth=3).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        expected = encoder(x)
        actual = reparameterize_model(encoder)(x)
    for a, b in zip(actual, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * (float(b.abs().max()) + 1))


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


def test_tag_is_downloaded_verified_cached_and_adapted(server, weights_file: Path, state,
                                                       tmp_path: Path, monkeypatch) -> None:
    url, handler = server
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    base = get_encoder_spec(NAME)
    source = attrs.evolve(base.weights[TAG], url=url, sha256=digest)
    spec = attrs.evolve(base, name="mobileone-download-test", weights={TAG: source})
    with testing.specs_installed(encoders=[spec]):
        encoder = segcore.get_encoder("mobileone-download-test", weights=TAG)
        _assert_same_state(encoder, state)
        cached = tmp_path / "cache" / "mobileone-download-test" / f"{NAME}.{TAG}.safetensors"
        assert cached.is_file()
        encoder = segcore.get_encoder("mobileone-download-test", weights=TAG, in_channels=1)
        torch.testing.assert_close(encoder.stage0.rbr_scale.conv.weight.detach(),
                                   state[STEM_KERNELS[1]].sum(1, keepdim=True))
        params = segcore.get_preprocessing_params("mobileone-download-test", pretrained=TAG)
        assert params["mean"] == [0.485, 0.456, 0.406]
    assert handler.requests == ["/model.safetensors"]


def test_download_with_a_wrong_digest_is_refused(server, tmp_path: Path, monkeypatch) -> None:
    url, _ = server
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    base = get_encoder_spec(NAME)
    source = WeightSource(url=url, sha256="0" * 64, filename="mobileone_s0.bad.safetensors")
    spec = attrs.evolve(base, name="mobileone-bad-digest", weights={"imagenet": source})
    with testing.specs_installed(encoders=[spec]), pytest.raises(ChecksumError):
        segcore.get_encoder("mobileone-bad-digest", weights="imagenet")
    assert not (tmp_path / "cache" / "mobileone-bad-digest" / "mobileone_s0.bad.safetensors"
                ).exists()
