"""An unusable cache directory is a WeightsError naming it and SEGCORE_CACHE (item 3)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import attrs
import pytest

from segcore import testing, weights
from segcore.errors import WeightsError
from segcore.specs import WeightSource

sys.path.insert(0, str(Path(__file__).parent))

from weights_support import can_write_in

DIGEST = "3" * 64


def _fetch(url: str | None = "http://127.0.0.1:9/tiny.safetensors", sha256: str = DIGEST):
    """``weights.fetch`` of a test encoder's tag; the URL is never reached in these tests."""
    source = WeightSource(url=url, sha256=sha256)
    spec = attrs.evolve(testing.TINY_ENCODER_SPEC, name="tiny-pretrained",
                        weights={"imagenet": source})
    return weights.fetch(spec, "imagenet", source)


def _assert_cache_error(error: pytest.ExceptionInfo[WeightsError], path: Path) -> None:
    message = str(error.value)
    assert str(path) in message
    assert "SEGCORE_CACHE" in message
    assert not isinstance(error.value, (NotADirectoryError, PermissionError))


def test_cache_variable_pointing_to_a_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache.txt"
    cache.write_text("not a folder")
    monkeypatch.setenv("SEGCORE_CACHE", str(cache))
    with pytest.raises(WeightsError, match="is not a directory") as error:
        _fetch()
    _assert_cache_error(error, cache)


def test_cache_variable_below_a_file(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("SEGCORE_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(WeightsError, match="is not a directory") as error:
        _fetch()
    _assert_cache_error(error, tmp_path / "file")


def test_cache_variable_pointing_to_dev_null(monkeypatch):
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null here")
    monkeypatch.setenv("SEGCORE_CACHE", "/dev/null")
    with pytest.raises(WeightsError) as error:
        _fetch(url=None)  # also without a download address: the cache is the problem
    _assert_cache_error(error, Path("/dev/null"))


def test_read_only_cache_directory(tmp_path, monkeypatch):
    cache = tmp_path / "read-only"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        if can_write_in(cache):
            pytest.skip("permission bits do not apply to this user (root)")
        monkeypatch.setenv("SEGCORE_CACHE", str(cache))
        with pytest.raises(WeightsError, match="cannot be written") as error:
            _fetch()
        _assert_cache_error(error, cache / "tiny-pretrained")
    finally:
        cache.chmod(0o755)


def test_cache_on_a_filesystem_nobody_may_write(monkeypatch):
    """/sys refuses new files even to root: the same path as a read-only directory."""
    system = Path("/sys/kernel")
    if not system.is_dir() or can_write_in(system):
        pytest.skip("no read-only /sys/kernel here")
    monkeypatch.setenv("SEGCORE_CACHE", str(system))
    with pytest.raises(WeightsError, match="cannot be written") as error:
        _fetch()
    _assert_cache_error(error, system / "tiny-pretrained")


def test_read_only_cache_with_the_file_in_it_still_works(tmp_path, monkeypatch):
    cache = tmp_path / "shared-cache"
    cached = cache / "tiny-pretrained" / "tiny.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    monkeypatch.setenv("SEGCORE_CACHE", str(cache))
    for folder in (cached.parent, cache):
        folder.chmod(0o555)
    try:
        if can_write_in(cached.parent):
            pytest.skip("permission bits do not apply to this user (root)")
        assert _fetch(sha256=digest) == cached
        weights._VERIFIED.clear()
        assert _fetch(sha256=digest) == cached  # no record could be written: hashed again
    finally:
        for folder in (cache, cached.parent):
            folder.chmod(0o755)


def test_directory_in_the_place_of_the_cached_file(monkeypatch):
    cached = weights.cache_dir() / "tiny-pretrained" / "tiny.safetensors"
    cached.mkdir(parents=True)
    with pytest.raises(WeightsError, match="in the way") as error:
        _fetch()
    _assert_cache_error(error, cached)


def test_download_into_a_folder_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WeightsError, match="is not a directory") as error:
        weights.download("http://127.0.0.1:9/x.safetensors", tmp_path / "file" / "x.safetensors",
                         sha256=DIGEST)
    assert str(tmp_path / "file") in str(error.value)
