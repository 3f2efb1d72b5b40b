"""Weights: tag -> source -> cache -> module, classifier keys, first-convolution adaptation.

Downloads cannot reach the hub here: the tests write the files and serve one over HTTP on
127.0.0.1. Xception (the smallest, 83 MB in float32) carries the file tests; the classifier
keys of the Inception files are checked on ``remap_state_dict`` directly.
"""

from __future__ import annotations

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
from segcore.weights import cache_dir, sha256_of


def _random_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of ``name`` whose every tensor (BN statistics included) is random."""
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for key, value in segcore.get_encoder(name, depth=1).state_dict().items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=generator) + 0.5
            result[key] = noise if "running_var" in key else noise - 1.0
        else:
            result[key] = value.clone() + 7
    return result


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return _random_state("xception")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory,
                 state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("weights") / "xception-test.safetensors"
    save_file(state, str(path))
    return path


def _assert_same_state(encoder: torch.nn.Module, expected: dict[str, torch.Tensor],
                       skip: tuple[str, ...] = ()) -> None:
    actual = encoder.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        if key not in skip:
            assert torch.equal(actual[key], value), key


def test_tag_through_a_file_source_into_the_cache(weights_file: Path, state,
                                                  segcore_without_plugins) -> None:
    from segcore_inception.plugin import segcore_encoders

    [spec] = [s for s in segcore_encoders() if s.name == "xception"]
    source = attrs.evolve(spec.weights["imagenet"], url=weights_file.as_uri(),
                          sha256=sha256_of(weights_file))
    with testing.specs_installed(encoders=[attrs.evolve(spec, weights={"imagenet": source})]):
        encoder = segcore.get_encoder("xception", weights="imagenet")
        _assert_same_state(encoder, state)
        assert (cache_dir() / "xception" / "xception.imagenet.safetensors").is_file()
        params = segcore.get_preprocessing_params("xception", pretrained="imagenet")
        assert params["mean"] == [0.5, 0.5, 0.5] and params["std"] == [0.5, 0.5, 0.5]


def test_classifier_file_with_fc_keys_loads(tmp_path: Path, state) -> None:
    path = tmp_path / "xception-classifier.pth"
    torch.save({**state, "fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)},
               path)
    _assert_same_state(segcore.get_encoder("xception", weights=path), state)


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


def test_one_input_channel_sums_the_first_kernel(weights_file: Path, state) -> None:
    encoder = segcore.get_encoder("xception", in_channels=1, weights=weights_file)
    kernel = state["conv1.weight"]
    expected = kernel[:, 0:1] + kernel[:, 1:2] + kernel[:, 2:3]
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected)
    _assert_same_state(encoder, {**state, "conv1.weight": expected})
    assert encoder.out_channels == (1, 64, 128, 256, 728, 2048)


def test_four_input_channels_cycle_and_rescale(weights_file: Path, state) -> None:
    encoder = segcore.get_encoder("xception", in_channels=4, weights=weights_file, depth=1)
    kernel = state["conv1.weight"]
    expected = torch.stack([kernel[:, 0], kernel[:, 1], kernel[:, 2], kernel[:, 0]], 1) * 0.75
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected)
    x = torch.randn(1, 3, 16, 16)
    four = torch.cat([x, x[:, :1]], 1)
    original = torch.nn.functional.conv2d(x, kernel, stride=2, padding=1)
    extra = torch.nn.functional.conv2d(x[:, :1], kernel[:, :1], stride=2, padding=1)
    torch.testing.assert_close(encoder.conv1(four), 0.75 * (original + extra),
                               atol=1e-5, rtol=1e-5)


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


def test_tag_is_downloaded_verified_and_cached(server, weights_file: Path, state,
                                               monkeypatch) -> None:
    url, handler = server
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    base = get_encoder_spec("xception")
    source = attrs.evolve(base.weights["imagenet"], url=url, sha256=sha256_of(weights_file))
    spec = attrs.evolve(base, name="xception-download-test", weights={"imagenet": source})
    with testing.specs_installed(encoders=[spec]):
        _assert_same_state(segcore.get_encoder("xception-download-test", weights=True), state)
        cached = cache_dir() / "xception-download-test" / "xception.imagenet.safetensors"
        assert cached.is_file()
        segcore.get_encoder("xception-download-test", weights="imagenet", depth=1)  # cached
    assert handler.requests == ["/model.safetensors"]


def test_download_with_a_wrong_digest_is_refused(server, monkeypatch) -> None:
    url, _ = server
    monkeypatch.delenv("SEGCORE_OFFLINE", raising=False)
    base = get_encoder_spec("xception")
    source = attrs.evolve(base.weights["imagenet"], url=url, sha256="0" * 64)
    spec = attrs.evolve(base, name="xception-bad-digest", weights={"imagenet": source})
    with testing.specs_installed(encoders=[spec]), pytest.raises(ChecksumError):
        segcore.get_encoder("xception-bad-digest", weights="imagenet")
    assert not (cache_dir() / "xception-bad-digest" / "xception.imagenet.safetensors").exists()


def test_imagenet_background_sources_are_distinct_files() -> None:
    spec = get_encoder_spec("inceptionresnetv2")
    imagenet, background = spec.weights["imagenet"], spec.weights["imagenet+background"]
    assert "/smp-hub/inceptionresnetv2.imagenet-background/" in background.url
    assert imagenet.url != background.url
    assert imagenet.cache_filename(spec.name, "imagenet") != \
        background.cache_filename(spec.name, "imagenet+background")
