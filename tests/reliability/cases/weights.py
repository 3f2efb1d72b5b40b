"""Catalogue rows: weights files, the cache, downloads and their settings.

Items: 7.2 failed downloads of hub weights; 7.3 unusable cache directories; 7.4 transfers cut
midway; 7.5 download deadlines; 7.6 the download lock; 7.7 verification of cached files; 7.8
corrupt weights files; 7.16 a directory given as a weights file; "environment" the settings'
values. Downloads go to a local HTTP server started inside the row and closed in a ``finally``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from catalogue import Case, Context
from safetensors.torch import save

from segcore import weights
from segcore.errors import (
    ChecksumError,
    ConfigurationWarning,
    WeightsError,
    WeightsFileError,
    WeightsNotFoundError,
)
from segcore.specs import EncoderSpec, WeightSource

# the local HTTP server and the writability probe are shared with tests/core/test_weights*.py
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "core"))

from weights_support import FileServer, can_write_in

REVISION = "0123456789abcdef0123456789abcdef01234567"
HUB_PATH = f"/smp-hub/tiny.imagenet/resolve/{REVISION}/model.safetensors"


# -- file contents ---------------------------------------------------------------------------
def _state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
            "conv.bias": torch.randn(4, generator=generator)}


def _torch_bytes(legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(_state(), buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _cut(data: Callable[[], bytes], fraction: float) -> Callable[[], bytes]:
    return lambda: data()[: int(len(data()) * fraction)]


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("this would have run code",))


def _exploit_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(1), "payload": _Exploit()}, buffer)
    return buffer.getvalue()


def _bad_header_safetensors() -> bytes:
    header = b'{"conv.weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]'  # no }
    return len(header).to_bytes(8, "little") + header + b"\0" * 16


CONTENTS: dict[str, tuple[str, Callable[[], bytes]]] = {
    # variant id: (description, bytes)
    "text": ("a text file", lambda: b"these are not weights\n"),
    "one-byte": ("a single byte", lambda: b"e"),
    "empty": ("an empty file", lambda: b""),
    "json": ("a JSON file", lambda: json.dumps({"conv.weight": [1.0, 2.0]}).encode()),
    "zip-cut-10": ("a zip torch file cut at 10%", _cut(_torch_bytes, 0.1)),
    "zip-cut-50": ("a zip torch file cut at 50%", _cut(_torch_bytes, 0.5)),
    "zip-cut-90": ("a zip torch file cut at 90%", _cut(_torch_bytes, 0.9)),
    "legacy-cut-50": ("a legacy torch file cut at 50%",
                      _cut(lambda: _torch_bytes(legacy=True), 0.5)),
    "safetensors-cut-50": ("a safetensors file cut at 50%", _cut(lambda: save(_state()), 0.5)),
    "safetensors-bad-header": ("a safetensors file with a broken header",
                               _bad_header_safetensors),
    "raw-pickle": ("a plain pickle of a dict", lambda: pickle.dumps({"x": [1, 2]})),
    "pickle-code": ("a torch file with a pickle that runs code", _exploit_bytes),
}
SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def _load_file(suffix: str, content: Callable[[], bytes]) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        path = context.tmp_path / f"broken-weights{suffix}"
        path.write_bytes(content())
        return weights.load_state_dict(path)

    return call


def _load_directory(suffix: str) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        folder = context.tmp_path / f"folder{suffix}"
        folder.mkdir()
        return weights.load_state_dict(folder)

    return call


def _load_missing(suffix: str) -> Callable[[Context], Any]:
    return lambda context: weights.load_state_dict(context.tmp_path / f"absent{suffix}")


def _file_rows() -> list[Case]:
    rows = []
    for suffix in SUFFIXES:
        extension = suffix.lstrip(".")
        for variant, (description, content) in CONTENTS.items():
            words = ["broken-weights" + suffix, "corrupt"]
            if variant == "empty":
                words.append("empty")
            if variant == "pickle-code" and suffix != ".safetensors":
                words.append("could run code")
            rows.append(Case(
                id=f"weights-file-{variant}-{extension}", item="7.8",
                description=f"load {description} named *{suffix}",
                call=_load_file(suffix, content), error=WeightsFileError, words=words,
            ))
        rows.append(Case(
            id=f"weights-file-directory-{extension}", item="7.16",
            description=f"load a directory named *{suffix}",
            call=_load_directory(suffix), error=WeightsFileError,
            words=["is a directory", ".safetensors or .pth file", "model.safetensors"],
        ))
        rows.append(Case(
            id=f"weights-file-missing-{extension}", item="7.8",
            description=f"load a missing *{suffix} file",
            call=_load_missing(suffix), error=WeightsNotFoundError,
            words=["absent" + suffix, "does not exist"],
        ))
    return rows


# -- the cache and downloads -----------------------------------------------------------------
def _spec(url: str | None, sha256: str | None) -> tuple[EncoderSpec, WeightSource]:
    source = WeightSource(url=url, sha256=sha256)
    spec = EncoderSpec(name="tiny-pretrained", family="Testing",
                       factory="segcore.testing:build_tiny_encoder",
                       out_channels=(3, 8, 16, 24, 32, 40), weights={"imagenet": source})
    return spec, source


def _fetch(url: str | None, sha256: str | None = "3" * 64) -> Path:
    spec, source = _spec(url, sha256)
    return weights.fetch(spec, "imagenet", source)


def _cache_is_a_file(context: Context) -> Any:
    cache = context.tmp_path / "cache-is-a-file.txt"
    cache.write_text("not a folder")
    context.monkeypatch.setenv("SEGCORE_CACHE", str(cache))
    return _fetch("http://127.0.0.1:9/tiny.safetensors")


def _cache_below_a_file(context: Context) -> Any:
    (context.tmp_path / "plain-file").write_text("x")
    context.monkeypatch.setenv("SEGCORE_CACHE", str(context.tmp_path / "plain-file" / "cache"))
    return _fetch("http://127.0.0.1:9/tiny.safetensors")


def _cache_is_dev_null(context: Context) -> Any:
    context.monkeypatch.setenv("SEGCORE_CACHE", os.devnull)
    return _fetch(None)


def _cache_is_read_only(context: Context) -> Any:
    cache = context.tmp_path / "read-only-cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        if can_write_in(cache):  # root ignores permission bits: /sys refuses even root
            cache = Path("/sys/kernel")
            if not cache.is_dir() or can_write_in(cache):
                pytest.skip("no read-only directory can be made for this user")
        context.monkeypatch.setenv("SEGCORE_CACHE", str(cache))
        return _fetch("http://127.0.0.1:9/tiny.safetensors")
    finally:
        (context.tmp_path / "read-only-cache").chmod(0o755)


def _cached_path_is_a_directory(context: Context) -> Any:
    (weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors").mkdir(parents=True)
    return _fetch("http://127.0.0.1:9/tiny.safetensors")


@contextlib.contextmanager
def _serving(context: Context, routes: dict[str, tuple[str, bytes, dict[str, str]]]
             ) -> Iterator[str]:
    """A local HTTP server for the block; yields its base URL.

    ``routes``: path -> (mode, body, headers); mode ``"plain"``, a misbehaviour of
    ``FileServer`` (``"cut"``, ``"short"``, ``"trickle"``, ``"hang"``) or ``"status"``, which
    answers the HTTP error ``headers["code"]``. Other paths answer 404.
    """
    for variable in ("no_proxy", "NO_PROXY"):
        context.monkeypatch.setenv(variable, "127.0.0.1,localhost")
    server = FileServer()
    for path, (mode, data, headers) in routes.items():
        if mode == "status":
            server.status[path] = int(headers["code"])
            continue
        server.files[path] = data
        server.headers[path] = headers
        if mode != "plain":
            server.modes[path] = mode
    try:
        yield server.url("")
    finally:
        server.close()


def _download(path: str, mode: str, *, sha256: str | None = None, data: bytes | None = None,
              headers: dict[str, str] | None = None, env: dict[str, str] | None = None,
              ) -> Callable[[Context], Any]:
    """Fetch ``path`` from a local server answering in ``mode`` (see ``_serving``)."""

    def call(context: Context) -> Any:
        for name, value in (env or {}).items():
            context.monkeypatch.setenv(name, value)
        body = save(_state()) if data is None else data
        digest = sha256 if sha256 != "right" else hashlib.sha256(body).hexdigest()
        with _serving(context, {path: (mode, body, headers or {})}) as base:
            return _fetch(base + path, digest)

    return call


def _refused_connection(path: str, sha256: str | None) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        with _serving(context, {}) as base:
            pass  # closed again: nothing listens on the port any more
        return _fetch(base + path, sha256)

    return call


def _offline_not_cached(context: Context) -> Any:
    context.monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    return _fetch("https://example.invalid/tiny.safetensors")


def _corrupt_cached(url: str | None, offline: bool = False, status: int | None = None,
                    ) -> Callable[[Context], Any]:
    """A cached file whose bytes differ from the spec's digest."""

    def call(context: Context) -> Any:
        data = save(_state())
        digest = hashlib.sha256(data).hexdigest()
        name = "tiny.safetensors" if url else "tiny-pretrained.imagenet.safetensors"
        cached = weights.cache_dir() / "tiny-pretrained" / name
        cached.parent.mkdir(parents=True)
        cached.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
        if offline:
            context.monkeypatch.setenv("SEGCORE_OFFLINE", "1")
        if url is None:
            return _fetch(None, digest)
        routes = {url: ("status", b"", {"code": str(status)})} if status else {}
        with _serving(context, routes) as base:
            return _fetch(base + url, digest)

    return call


def _lock_held_elsewhere(context: Context) -> Any:
    from filelock import FileLock

    context.monkeypatch.setenv("SEGCORE_DOWNLOAD_TIMEOUT", "1")
    context.monkeypatch.setenv("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "0.5")
    lock = weights.cache_dir() / ".locks" / "tiny-pretrained" / "tiny.safetensors.lock"
    lock.parent.mkdir(parents=True)
    with FileLock(lock):  # as another process downloading the same file would
        return _fetch("http://127.0.0.1:9/tiny.safetensors")


def _setting(name: str, value: str, read: Callable[[], Any]) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        context.monkeypatch.setenv(name, value)
        return read()

    return call


CACHE_ROWS = [
    Case(id="cache-variable-is-a-file", item="7.3",
         description="SEGCORE_CACHE names a regular file", call=_cache_is_a_file,
         error=WeightsError, words=["SEGCORE_CACHE", "cache-is-a-file.txt", "not a directory"]),
    Case(id="cache-variable-below-a-file", item="7.3",
         description="SEGCORE_CACHE is a path below a regular file", call=_cache_below_a_file,
         error=WeightsError, words=["SEGCORE_CACHE", "plain-file", "not a directory"]),
    Case(id="cache-variable-is-dev-null", item="7.3",
         description="SEGCORE_CACHE=/dev/null", call=_cache_is_dev_null,
         error=WeightsError, words=["SEGCORE_CACHE", os.devnull, "not a directory"]),
    Case(id="cache-directory-read-only", item="7.3",
         description="SEGCORE_CACHE names a read-only directory", call=_cache_is_read_only,
         error=WeightsError, words=["SEGCORE_CACHE", "cannot be written", "writable directory"]),
    Case(id="cache-file-path-is-a-directory", item="7.3",
         description="a directory where the cached weights file should be",
         call=_cached_path_is_a_directory, error=WeightsError,
         words=["SEGCORE_CACHE", "tiny.safetensors", "in the way"]),
]

DOWNLOAD_ROWS = [
    Case(id="download-hub-http-500", item="7.2",
         description="hub weights whose server answers HTTP 500",
         call=_download(HUB_PATH, "status", headers={"code": "500"}),
         error=WeightsNotFoundError,
         words=["HTTP 500", REVISION, "tiny-pretrained.imagenet.safetensors", "SEGCORE_OFFLINE"]),
    Case(id="download-hub-http-404", item="7.2",
         description="hub weights whose server answers HTTP 404",
         call=_download(HUB_PATH, "status", headers={"code": "404"}),
         error=WeightsNotFoundError, words=["HTTP 404", "put it at", "SEGCORE_OFFLINE"]),
    Case(id="download-hub-no-network", item="7.2",
         description="hub weights with no server listening",
         call=_refused_connection(HUB_PATH, None), error=WeightsNotFoundError,
         words=["refused", REVISION, "put it at", "SEGCORE_OFFLINE"]),
    Case(id="download-hub-digest-request-hangs", item="7.2",
         description="hub weights whose server never answers the digest request",
         call=_download(HUB_PATH, "hang", env={"SEGCORE_DOWNLOAD_STALL_TIMEOUT": "1"}),
         error=WeightsNotFoundError,
         words=["sha256", "SEGCORE_DOWNLOAD_STALL_TIMEOUT", "put it at", "SEGCORE_OFFLINE"]),
    Case(id="download-hub-without-digest", item="7.2",
         description="hub weights the server serves without a digest header",
         call=_download(HUB_PATH, "plain"), error=ChecksumError,
         words=["no sha256 is known", "put it at"]),
    Case(id="download-http-500", item="7.2",
         description="weights with a digest whose server answers HTTP 500",
         call=_download("/tiny.safetensors", "status", sha256="right", headers={"code": "500"}),
         error=WeightsNotFoundError, words=["HTTP 500", "tiny.safetensors", "SEGCORE_OFFLINE"]),
    Case(id="download-no-network", item="7.2",
         description="weights with a digest and no server listening",
         call=_refused_connection("/tiny.safetensors", "3" * 64), error=WeightsNotFoundError,
         words=["refused", "put it at", "SEGCORE_OFFLINE"]),
    Case(id="download-offline-not-cached", item="7.2",
         description="SEGCORE_OFFLINE=1 and the weights are not cached",
         call=_offline_not_cached, error=WeightsNotFoundError,
         words=["SEGCORE_OFFLINE", "https://example.invalid/tiny.safetensors", "put the file at"]),
    Case(id="download-no-address", item="7.2",
         description="weights without a URL that are not cached",
         call=lambda context: _fetch(None), error=WeightsNotFoundError,
         words=["no download address", "put the file at"]),
    Case(id="download-sha256-mismatch", item="7.7",
         description="a download whose bytes differ from the spec's digest",
         call=_download("/tiny.safetensors", "plain", sha256="0" * 64), error=ChecksumError,
         words=["expected " + "0" * 64, "discarded"]),
    Case(id="download-chunked-cut", item="7.4",
         description="a chunked answer cut after its first chunk",
         call=_download("/tiny.safetensors", "cut", sha256="right"),
         error=WeightsNotFoundError, words=["cut after", "tiny.safetensors", "SEGCORE_OFFLINE"]),
    Case(id="download-content-length-short", item="7.4",
         description="an answer closed before its Content-Length",
         call=_download("/tiny.safetensors", "short", sha256="right"),
         error=WeightsNotFoundError, words=["closed after", "put it at"]),
    Case(id="download-trickle-total-deadline", item="7.5",
         description="a server sending one byte every 0.3 s (deadline 2 s)",
         call=_download("/tiny.safetensors", "trickle", sha256="right",
                        env={"SEGCORE_DOWNLOAD_TIMEOUT": "2",
                             "SEGCORE_DOWNLOAD_STALL_TIMEOUT": "10"}),
         error=WeightsNotFoundError,
         words=["did not finish within 2 s", "SEGCORE_DOWNLOAD_TIMEOUT", "put it at"]),
    Case(id="download-hang-stall-timeout", item="7.5",
         description="a server that never answers (stall timeout 1 s)",
         call=_download("/tiny.safetensors", "hang", sha256="right",
                        env={"SEGCORE_DOWNLOAD_STALL_TIMEOUT": "1"}),
         error=WeightsNotFoundError,
         words=["no data arrived for 1 s", "SEGCORE_DOWNLOAD_STALL_TIMEOUT", "put it at"]),
    Case(id="download-lock-held-too-long", item="7.6",
         description="another process holds the download lock past the deadline",
         call=_lock_held_elsewhere, error=WeightsNotFoundError,
         words=["another process", "tiny.safetensors.lock", "delete"]),
    Case(id="cached-file-corrupt-offline", item="7.7",
         description="a corrupt cached file with SEGCORE_OFFLINE=1",
         call=_corrupt_cached("/tiny.safetensors", offline=True), error=ChecksumError,
         words=["corrupt", "sha256", "expected", "tiny.safetensors", "SEGCORE_OFFLINE"]),
    Case(id="cached-file-corrupt-no-address", item="7.7",
         description="a corrupt cached file of weights without a URL",
         call=_corrupt_cached(None), error=ChecksumError,
         words=["corrupt", "expected", "put a good copy"]),
    Case(id="cached-file-corrupt-download-fails", item="7.7",
         description="a corrupt cached file whose new download answers HTTP 500",
         call=_corrupt_cached("/tiny.safetensors", status=500), error=ChecksumError,
         words=["corrupt", "downloading it again failed", "HTTP 500"]),
]

SETTING_ROWS = [
    Case(id=f"setting-{name.lower().replace('_', '-')}-{label}", item="environment",
         description=f"{name}={value!r}", call=_setting(name, value, read),
         error=ConfigurationWarning, words=[name, repr(value)])
    for name, value, label, read in [
        ("SEGCORE_OFFLINE", "2", "two", weights.offline),
        ("SEGCORE_OFFLINE", "maybe", "maybe", weights.offline),
        ("SEGCORE_OFFLINE", "offline", "word", weights.offline),
        ("SEGCORE_DOWNLOAD_TIMEOUT", "abc", "word", weights.download_timeouts),
        ("SEGCORE_DOWNLOAD_TIMEOUT", "0", "zero", weights.download_timeouts),
        ("SEGCORE_DOWNLOAD_TIMEOUT", "-5", "negative", weights.download_timeouts),
        ("SEGCORE_DOWNLOAD_TIMEOUT", "nan", "nan", weights.download_timeouts),
        ("SEGCORE_DOWNLOAD_TIMEOUT", "1h", "unit", weights.download_timeouts),
        ("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "soon", "word", weights.download_timeouts),
        ("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "inf", "infinite", weights.download_timeouts),
    ]
]

CASES: list[Case] = [*_file_rows(), *CACHE_ROWS, *DOWNLOAD_ROWS, *SETTING_ROWS]
