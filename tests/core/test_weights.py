"""Pretrained weights: verified downloads from a local HTTP server, the cache, safe file loading."""

from __future__ import annotations

import hashlib
import http.server
import pickle
import threading
from pathlib import Path

import attrs
import pytest
import torch
from safetensors.torch import save_file

import segcore
from segcore import testing, weights
from segcore.errors import (
    ChecksumError,
    UnknownWeightsError,
    WeightsFileError,
    WeightsNotFoundError,
)
from segcore.specs import Preprocessing, WeightSource

REVISION = "0123456789abcdef0123456789abcdef01234567"


class _Server:
    """A tiny HTTP server on 127.0.0.1 serving files from memory and counting requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                server.requests.append((self.command, self.path))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                for key, value in server.headers.get(self.path, {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    instance = _Server()
    yield instance
    instance.close()


def _encoder_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    encoder = testing.TinyEncoder()
    return {k: v.clone() for k, v in encoder.state_dict().items()}


def _safetensors_bytes(tmp_path: Path, state: dict[str, torch.Tensor]) -> bytes:
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    return path.read_bytes()


def _spec_with(url: str | None, sha256: str | None, name: str = "tiny-pretrained"):
    source = WeightSource(
        url=url, sha256=sha256,
        preprocessing=Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)),
    )
    return attrs.evolve(testing.TINY_ENCODER_SPEC, name=name, weights={"imagenet": source},
                        weight_aliases={"in1k": "imagenet"})


def test_download_verifies_sha256_and_loads_the_weights(server, tmp_path):
    state = _encoder_state()
    data = _safetensors_bytes(tmp_path, state)
    server.files["/tiny.safetensors"] = data
    spec = _spec_with(server.url("/tiny.safetensors"), hashlib.sha256(data).hexdigest())
    with testing.specs_installed(encoders=[spec]):
        encoder = segcore.get_encoder("tiny-pretrained", weights="imagenet")
    for key, value in state.items():
        torch.testing.assert_close(encoder.state_dict()[key], value)
    cached = weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors"
    assert cached.read_bytes() == data
    assert not list(cached.parent.glob("*.part")), "the temporary download file must be removed"


def test_cache_hit_makes_no_request(server, tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    spec = _spec_with(server.url("/tiny.safetensors"), hashlib.sha256(data).hexdigest())
    with testing.specs_installed(encoders=[spec]):
        segcore.get_encoder("tiny-pretrained", weights="imagenet")
        assert len(server.requests) == 1
        segcore.get_encoder("tiny-pretrained", weights="in1k")  # alias of the same tag
    assert len(server.requests) == 1


def test_sha256_mismatch_is_refused_and_nothing_is_cached(server, tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    spec = _spec_with(server.url("/tiny.safetensors"), "0" * 64)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(ChecksumError, match="expected 0000"):
            segcore.get_encoder("tiny-pretrained", weights="imagenet")
    folder = weights.cache_dir() / "tiny-pretrained"
    assert not folder.exists() or not any(folder.iterdir())


def test_hub_reported_digest_is_used_for_pinned_revisions(server, tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    path = f"/smp-hub/tiny.imagenet/resolve/{REVISION}/model.safetensors"
    server.files[path] = data
    server.headers[path] = {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"'}
    spec = _spec_with(server.url(path), None)
    with testing.specs_installed(encoders=[spec]):
        segcore.get_encoder("tiny-pretrained", weights="imagenet")
    assert ("HEAD", path) in server.requests and ("GET", path) in server.requests
    cached = weights.cache_dir() / "tiny-pretrained" / "tiny-pretrained.imagenet.safetensors"
    assert cached.is_file()


def test_hub_reported_digest_mismatch_is_refused(server, tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    path = f"/smp-hub/tiny.imagenet/resolve/{REVISION}/model.safetensors"
    server.files[path] = data
    server.headers[path] = {"X-Linked-Etag": '"' + "a" * 64 + '"'}
    with pytest.raises(ChecksumError):
        weights.download(server.url(path), tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_download_without_any_known_digest_is_refused(server, tmp_path):
    server.files["/main.safetensors"] = b"x"
    with pytest.raises(ChecksumError, match="no sha256 is known"):
        weights.download(server.url("/main.safetensors"), tmp_path / "x.safetensors")
    assert server.requests == []  # not even a request: there is nothing to verify against


def test_offline_error_names_the_file_and_where_to_put_it(monkeypatch):
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    spec = _spec_with("https://example.invalid/tiny.safetensors", "1" * 64)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(WeightsNotFoundError) as error:
            segcore.get_encoder("tiny-pretrained", weights="imagenet")
    message = str(error.value)
    assert "https://example.invalid/tiny.safetensors" in message
    assert str(weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors") in message


def test_unreachable_server_error_says_where_to_put_the_file(server):
    port = server.httpd.server_address[1]
    server.close()
    spec = _spec_with(f"http://127.0.0.1:{port}/tiny.safetensors", "1" * 64)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(WeightsNotFoundError, match="put it at"):
            segcore.get_encoder("tiny-pretrained", weights="imagenet")
    server.httpd = type("Closed", (), {"shutdown": lambda self: None,
                                       "server_close": lambda self: None})()


def test_source_without_url_asks_for_the_file():
    spec = _spec_with(None, None)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(WeightsNotFoundError, match="put the file at"):
            segcore.get_encoder("tiny-pretrained", weights="imagenet")


def test_unknown_tag_lists_the_available_ones():
    spec = _spec_with(None, None)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(UnknownWeightsError, match="available: 'imagenet'"):
            segcore.get_encoder("tiny-pretrained", weights="instagram")


def test_preprocessing_params_come_with_the_weights():
    spec = _spec_with(None, None)
    with testing.specs_installed(encoders=[spec]):
        params = segcore.get_preprocessing_params("tiny-pretrained")
        assert params == {"input_space": "RGB", "input_range": [0.0, 1.0],
                          "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
        preprocess = segcore.get_preprocessing_fn("tiny-pretrained", pretrained="imagenet")
    image = torch.full((4, 4, 3), 255.0)
    torch.testing.assert_close(preprocess(image), torch.full((4, 4, 3), 2.0))


# -- local files ---------------------------------------------------------------------------
@pytest.fixture
def tiny():
    with testing.tiny_encoder_installed():
        yield


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_from_a_local_file(tiny, tmp_path, suffix):
    state = _encoder_state()
    path = tmp_path / f"encoder{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)  # a wrapped checkpoint is unwrapped
    encoder = segcore.get_encoder(testing.TINY_ENCODER, weights=str(path))
    for key, value in state.items():
        torch.testing.assert_close(encoder.state_dict()[key], value)


def test_first_conv_is_adapted_for_other_channel_counts(tiny, tmp_path):
    state = _encoder_state()
    path = tmp_path / "encoder.safetensors"
    save_file(state, str(path))
    kernel = state["stages.0.0.weight"]
    one = segcore.get_encoder(testing.TINY_ENCODER, in_channels=1, weights=path)
    torch.testing.assert_close(one.stages[0][0].weight, kernel.sum(1, keepdim=True))
    five = segcore.get_encoder(testing.TINY_ENCODER, in_channels=5, weights=path)
    expected = kernel[:, [0, 1, 2, 0, 1]] * (3 / 5)
    torch.testing.assert_close(five.stages[0][0].weight, expected)
    assert five.out_channels[0] == 5
    assert five.eval()(torch.randn(1, 5, 32, 32))[-1].shape[1] == 40


def test_missing_file(tiny, tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        segcore.get_encoder(testing.TINY_ENCODER, weights=str(tmp_path / "nope.pth"))


def test_truncated_files_are_reported(tiny, tmp_path):
    state = _encoder_state()
    good = tmp_path / "good.safetensors"
    save_file(state, str(good))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(WeightsFileError, match="truncated or corrupt"):
        segcore.get_encoder(testing.TINY_ENCODER, weights=cut)
    torch.save(state, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match="truncated or corrupt"):
        segcore.get_encoder(testing.TINY_ENCODER, weights=tmp_path / "cut.pth")


class _Exploit:
    def __reduce__(self):
        return (print, ("this would have run code",))


def test_pickle_with_code_is_refused(tiny, tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "payload": _Exploit()}, path)
    with pytest.raises(WeightsFileError, match="could run code"):
        segcore.get_encoder(testing.TINY_ENCODER, weights=path)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"x": _Exploit()}))
    with pytest.raises(WeightsFileError):
        segcore.get_encoder(testing.TINY_ENCODER, weights=raw)


def test_file_of_a_different_architecture_is_refused(tiny, tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    path = tmp_path / "other.safetensors"
    save_file(other.state_dict(), str(path))
    with pytest.raises(WeightsFileError, match="different architecture or encoder"):
        segcore.get_encoder(testing.TINY_ENCODER, weights=path)


def test_file_with_a_wrong_shape_is_refused(tiny, tmp_path):
    state = _encoder_state()
    state["stages.4.0.weight"] = torch.zeros(7, 32, 3, 3)
    path = tmp_path / "shape.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsFileError, match="shape mismatches"):
        segcore.get_encoder(testing.TINY_ENCODER, weights=path)
