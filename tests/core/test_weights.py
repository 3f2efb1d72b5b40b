"""Pretrained weights: verified downloads from a local HTTP server, the cache, safe file loading."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import threading
import time
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

sys.path.insert(0, str(Path(__file__).parent))

from weights_support import FileServer

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def server(monkeypatch):
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    instance = FileServer()
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
    server.close()
    spec = _spec_with(server.url("/tiny.safetensors"), "1" * 64)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(WeightsNotFoundError, match="put it at"):
            segcore.get_encoder("tiny-pretrained", weights="imagenet")


@pytest.mark.parametrize(
    ("tag", "error", "words"),
    [
        ("imagenet", WeightsNotFoundError, "put the file at"),
        ("instagram", UnknownWeightsError, "available: 'imagenet'"),
    ],
    ids=["source-without-url-asks-for-the-file", "unknown-tag-lists-the-available-ones"],
)
def test_tag_without_a_downloadable_file(tag, error, words):
    spec = _spec_with(None, None)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(error, match=words):
            segcore.get_encoder("tiny-pretrained", weights=tag)


def test_preprocessing_params_come_with_the_weights():
    spec = _spec_with(None, None)
    with testing.specs_installed(encoders=[spec]):
        params = segcore.get_preprocessing_params("tiny-pretrained")
        assert params == {"input_space": "RGB", "input_range": [0.0, 1.0],
                          "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
        preprocess = segcore.get_preprocessing_fn("tiny-pretrained", pretrained="imagenet")
    image = torch.full((4, 4, 3), 255, dtype=torch.uint8)  # 8-bit data is scaled by 255
    torch.testing.assert_close(preprocess(image), torch.full((4, 4, 3), 2.0))


# -- failed downloads (items 2, 4, 5) ------------------------------------------------------
HUB_PATH = f"/smp-hub/tiny.imagenet/resolve/{REVISION}/model.safetensors"
HUB_CACHED = "tiny-pretrained.imagenet.safetensors"


def _fetch(url: str | None, sha256: str | None) -> Path:
    """``weights.fetch`` of the tag 'imagenet' of a test encoder 'tiny-pretrained'."""
    spec = _spec_with(url, sha256)
    return weights.fetch(spec, "imagenet", spec.weights["imagenet"])


def _assert_download_failure(message: str, url: str, cached: Path) -> None:
    assert url in message
    assert str(cached) in message, "the error says where to put the file"
    assert "SEGCORE_OFFLINE" in message


@pytest.mark.parametrize("status", [500, 503, 404])
def test_hub_download_failing_with_an_http_error_is_not_a_checksum_error(server, status):
    server.status[HUB_PATH] = status
    url = server.url(HUB_PATH)
    with pytest.raises(WeightsNotFoundError) as error:
        _fetch(url, None)
    _assert_download_failure(str(error.value), url,
                             weights.cache_dir() / "tiny-pretrained" / HUB_CACHED)
    assert f"HTTP {status}" in str(error.value)


def test_hub_download_without_network_is_not_a_checksum_error(server):
    server.close()  # nothing listens on the port any more: connection refused
    url = server.url(HUB_PATH)
    with pytest.raises(WeightsNotFoundError) as error:
        _fetch(url, None)
    _assert_download_failure(str(error.value), url,
                             weights.cache_dir() / "tiny-pretrained" / HUB_CACHED)


def test_hub_download_whose_digest_request_hangs_times_out(server, monkeypatch):
    monkeypatch.setenv("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "1")
    server.modes[HUB_PATH] = "hang"
    url = server.url(HUB_PATH)
    with pytest.raises(WeightsNotFoundError) as error:
        _fetch(url, None)
    _assert_download_failure(str(error.value), url,
                             weights.cache_dir() / "tiny-pretrained" / HUB_CACHED)
    assert "SEGCORE_DOWNLOAD_STALL_TIMEOUT" in str(error.value)


def test_hub_answer_without_a_digest_is_still_refused(server, tmp_path):
    server.files[HUB_PATH] = _safetensors_bytes(tmp_path, _encoder_state())  # no X-Linked-Etag
    with pytest.raises(ChecksumError, match="no sha256 is known"):
        _fetch(server.url(HUB_PATH), None)
    assert server.gets(HUB_PATH) == 0


def test_http_error_of_a_file_with_a_known_digest(server):
    server.status["/tiny.safetensors"] = 500
    url = server.url("/tiny.safetensors")
    with pytest.raises(WeightsNotFoundError, match="HTTP 500") as error:
        _fetch(url, "1" * 64)
    _assert_download_failure(str(error.value), url,
                             weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors")


@pytest.mark.parametrize("mode", ["cut", "short"])
def test_transfer_cut_midway_is_a_failed_download_and_leaves_nothing(server, tmp_path, mode):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    server.modes["/tiny.safetensors"] = mode
    url = server.url("/tiny.safetensors")
    with pytest.raises(WeightsNotFoundError) as error:
        _fetch(url, hashlib.sha256(data).hexdigest())
    folder = weights.cache_dir() / "tiny-pretrained"
    _assert_download_failure(str(error.value), url, folder / "tiny.safetensors")
    assert not (folder / "tiny.safetensors").exists()
    assert not list(folder.glob("*.part")), "no partial file may be left"


def test_trickling_server_hits_the_total_deadline(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGCORE_DOWNLOAD_TIMEOUT", "2")
    monkeypatch.setenv("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "10")  # a byte comes every 0.3 s
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    server.modes["/tiny.safetensors"] = "trickle"
    url = server.url("/tiny.safetensors")
    with pytest.raises(WeightsNotFoundError) as error:
        _fetch(url, hashlib.sha256(data).hexdigest())
    message = str(error.value)
    assert "did not finish within 2 s" in message and "SEGCORE_DOWNLOAD_TIMEOUT" in message
    _assert_download_failure(message, url,
                             weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors")
    assert not list((weights.cache_dir() / "tiny-pretrained").glob("*.part"))


def test_server_that_never_answers_hits_the_stall_timeout(server, monkeypatch):
    monkeypatch.setenv("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "1")
    server.modes["/tiny.safetensors"] = "hang"
    url = server.url("/tiny.safetensors")
    with pytest.raises(WeightsNotFoundError) as error:
        _fetch(url, "1" * 64)
    message = str(error.value)
    assert "no data arrived for 1 s" in message and "SEGCORE_DOWNLOAD_STALL_TIMEOUT" in message
    _assert_download_failure(message, url,
                             weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors")


# -- concurrent downloads and stale partial files (item 6) ---------------------------------
def test_concurrent_fetches_download_once(server, tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    server.delay = 1.0  # the first download is still running when the others ask
    url, digest = server.url("/tiny.safetensors"), hashlib.sha256(data).hexdigest()
    barrier = threading.Barrier(4)
    results: list[object] = []

    def work() -> None:
        barrier.wait()
        try:
            results.append(_fetch(url, digest))
        except Exception as error:  # reported below
            results.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cached = weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors"
    assert results == [cached] * 4
    assert server.gets("/tiny.safetensors") == 1
    assert cached.read_bytes() == data


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_stale_partial_files_are_removed_when_the_cache_is_used(server, tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    folder = weights.cache_dir() / "tiny-pretrained"
    folder.mkdir(parents=True)
    killed = folder / "tiny.safetensors.k1ll3d.part"  # this file's download, killed
    stale = folder / "other.safetensors.abc123.part"  # another file's, killed long ago
    live = folder / "other.safetensors.xyz789.part"  # another file's, still downloading
    for part in (killed, stale, live):
        part.write_bytes(b"partial")
    _age(stale, weights.DEFAULT_DOWNLOAD_TIMEOUT_S + 60)
    _fetch(server.url("/tiny.safetensors"), hashlib.sha256(data).hexdigest())
    assert not killed.exists(), "with the file's lock held, its partial files are dead"
    assert not stale.exists(), "partial files older than the deadline are dead"
    assert live.exists(), "a recent partial file of another file may be a live download"


def test_stale_partial_files_are_removed_on_a_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGCORE_DOWNLOAD_TIMEOUT", "100")
    data = _safetensors_bytes(tmp_path, _encoder_state())
    cached = weights.cache_dir() / "tiny-pretrained" / "tiny-pretrained.imagenet.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    stale = cached.parent / "tiny-pretrained.imagenet.safetensors.old.part"
    fresh = cached.parent / "tiny-pretrained.imagenet.safetensors.new.part"
    for part, age in ((stale, 150), (fresh, 50)):
        part.write_bytes(b"partial")
        _age(part, age)
    assert _fetch(None, hashlib.sha256(data).hexdigest()) == cached
    assert not stale.exists() and fresh.exists()


# -- verification of cached files (item 7) -------------------------------------------------
def _flip_a_byte_keeping_size(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # in the tensor data: the file still loads, with a wrong value
    path.write_bytes(bytes(data))


def _served_cached_and_corrupted(
    server: FileServer, tmp_path: Path
) -> tuple[bytes, str, str, Path]:
    """Serve weights, fetch them into the cache, flip a byte of the cached copy."""
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    url, digest = server.url("/tiny.safetensors"), hashlib.sha256(data).hexdigest()
    cached = _fetch(url, digest)
    _flip_a_byte_keeping_size(cached)
    return data, url, digest, cached


def test_corrupt_cached_file_is_downloaded_again(server, tmp_path):
    data, url, digest, cached = _served_cached_and_corrupted(server, tmp_path)
    assert _fetch(url, digest) == cached
    assert server.gets("/tiny.safetensors") == 2
    assert cached.read_bytes() == data


def test_corrupt_cached_file_is_refused_offline(server, tmp_path, monkeypatch):
    _, url, digest, cached = _served_cached_and_corrupted(server, tmp_path)
    actual = weights.sha256_of(cached)
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    weights._VERIFIED.clear()  # as in a new process
    with pytest.raises(ChecksumError) as error:
        _fetch(url, digest)
    message = str(error.value)
    for part in (str(cached), digest, actual, url, "SEGCORE_OFFLINE"):
        assert part in message
    assert server.gets("/tiny.safetensors") == 1


def test_corrupt_cached_file_without_url_is_refused(tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    digest = hashlib.sha256(data).hexdigest()
    cached = weights.cache_dir() / "tiny-pretrained" / "tiny-pretrained.imagenet.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(ChecksumError, match="put a good copy") as error:
        _fetch(None, digest)
    assert str(cached) in str(error.value) and digest in str(error.value)


def test_corrupt_cached_file_whose_new_download_fails(server, tmp_path):
    _, url, digest, cached = _served_cached_and_corrupted(server, tmp_path)
    server.status["/tiny.safetensors"] = 500
    with pytest.raises(ChecksumError, match="Downloading it again failed") as error:
        _fetch(url, digest)
    assert str(cached) in str(error.value) and "HTTP 500" in str(error.value)


def test_digest_reported_by_the_hub_is_recorded_and_checked(server, tmp_path, monkeypatch):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    digest = hashlib.sha256(data).hexdigest()
    server.files[HUB_PATH] = data
    server.headers[HUB_PATH] = {"X-Linked-Etag": f'"{digest}"'}
    url = server.url(HUB_PATH)
    cached = _fetch(url, None)
    _flip_a_byte_keeping_size(cached)
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    with pytest.raises(ChecksumError, match=digest):
        _fetch(url, None)
    monkeypatch.delenv("SEGCORE_OFFLINE")
    assert _fetch(url, None) == cached  # online: downloaded again, verified by the hub
    assert cached.read_bytes() == data and server.gets(HUB_PATH) == 2


def test_record_spares_rehashing_in_a_later_process(server, tmp_path, monkeypatch):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    server.files["/tiny.safetensors"] = data
    url, digest = server.url("/tiny.safetensors"), hashlib.sha256(data).hexdigest()
    cached = _fetch(url, digest)
    hashed: list[Path] = []
    original = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda path: hashed.append(path) or original(path))
    weights._VERIFIED.clear()  # a new process: the record's size and time still match
    assert _fetch(url, digest) == cached
    assert hashed == []
    stat = cached.stat()
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touched
    weights._VERIFIED.clear()
    assert _fetch(url, digest) == cached
    assert hashed == [cached], "a changed file is hashed again"
    assert _fetch(url, digest) == cached
    assert hashed == [cached], "once verified in this process, it is not hashed again"
    assert server.gets("/tiny.safetensors") == 1


def test_file_placed_by_hand_is_verified_against_the_spec(tmp_path):
    data = _safetensors_bytes(tmp_path, _encoder_state())
    cached = weights.cache_dir() / "tiny-pretrained" / "tiny-pretrained.imagenet.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    assert _fetch(None, hashlib.sha256(data).hexdigest()) == cached
    with pytest.raises(ChecksumError):
        _fetch(None, "2" * 64)


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
