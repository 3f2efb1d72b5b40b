"""Pretrained weights: tags to sources, the cache, verified downloads, safe file loading.

* ``encoder_weights`` is ``None``, a tag of the encoder's spec (``"imagenet"``, ``"ssl"``...)
  or a path to a ``.safetensors``/``.pth``/``.pt``/``.bin`` file.
* Files of tags live in the cache directory: ``$SEGCORE_CACHE``, else
  ``$XDG_CACHE_HOME/segcore``, else ``~/.cache/segcore``.
* A download happens only when the file is not cached, the tag has a URL, and
  ``SEGCORE_OFFLINE`` is not true. It is checked against the sha256 of the source (or, for a
  pinned Hugging Face revision, the digest the hub reports) and moved into place atomically.
  One process downloads a file at a time (a lock file next to it); the others wait for it.
  ``SEGCORE_DOWNLOAD_TIMEOUT`` (seconds, default 3600) bounds a whole download and
  ``SEGCORE_DOWNLOAD_STALL_TIMEOUT`` (default 60) the wait for the next bytes.
* A cached file is verified the first time a process uses it. Its digest is recorded next to
  it (``<file>.verified.json``: size, modification time, sha256) so that a later process only
  hashes it again when the file changed. A corrupt file is downloaded again, or refused.
* Temporary ``.part`` files that a killed process left behind are removed once they are older
  than the download deadline.
* Loading never runs code: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import pickle
import re
import stat
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import torch

from segcore.environment import env_flag, env_seconds
from segcore.errors import (
    ChecksumError,
    SkippedWeightsWarning,
    UnknownWeightsError,
    WeightsError,
    WeightsFileError,
    WeightsNotFoundError,
)
from segcore.specs import EncoderSpec, WeightSource

CACHE_VARIABLE = "SEGCORE_CACHE"
OFFLINE_VARIABLE = "SEGCORE_OFFLINE"
TIMEOUT_VARIABLE = "SEGCORE_DOWNLOAD_TIMEOUT"
STALL_TIMEOUT_VARIABLE = "SEGCORE_DOWNLOAD_STALL_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT_S = 3600.0
DEFAULT_STALL_TIMEOUT_S = 60.0
WEIGHT_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
RECORD_SUFFIX = ".verified.json"
LOCK_SUFFIX = ".lock"
PART_SUFFIX = ".part"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
USER_AGENT = "segcore-weights/1"

# Files this process has verified: path -> (size, mtime_ns, sha256).
_VERIFIED: dict[str, tuple[int, int, str]] = {}


# -- settings --------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The directory where weight files of tags are kept."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "segcore"


def offline() -> bool:
    """Whether ``SEGCORE_OFFLINE`` forbids downloads (1/true/yes/on...; others warn)."""
    return env_flag(OFFLINE_VARIABLE)


def download_timeouts() -> tuple[float, float]:
    """``(total, stall)``: the seconds a whole download may take, and may go without data."""
    return (
        env_seconds(TIMEOUT_VARIABLE, DEFAULT_DOWNLOAD_TIMEOUT_S),
        env_seconds(STALL_TIMEOUT_VARIABLE, DEFAULT_STALL_TIMEOUT_S),
    )


# -- tags ------------------------------------------------------------------------------------
def looks_like_path(weights: Any) -> bool:
    """Whether an ``encoder_weights`` value names a file rather than a tag."""
    if isinstance(weights, os.PathLike):
        return True
    if not isinstance(weights, str):
        return False
    return weights.lower().endswith(WEIGHT_FILE_SUFFIXES) or os.sep in weights or "/" in weights


def resolve_tag(spec: EncoderSpec, tag: Any) -> tuple[str, WeightSource]:
    """The canonical tag and source for ``tag`` (``True`` means the encoder's first tag)."""
    tags = list(spec.weights)
    if tag is True:
        if not tags:
            raise UnknownWeightsError(
                f"encoder {spec.name!r} has no pretrained weights; use encoder_weights=None"
            )
        tag = tags[0]
    if not isinstance(tag, str):
        raise UnknownWeightsError(
            f"encoder_weights must be None, a tag ({_tag_list(spec)}) or a path to a weights "
            f"file, got {tag!r}"
        )
    canonical = spec.weight_aliases.get(tag, tag)
    if canonical not in spec.weights:
        raise UnknownWeightsError(
            f"encoder {spec.name!r} has no weights {tag!r}; available: {_tag_list(spec)}. "
            f"Pass encoder_weights=None for random initialisation, or a path to a weights file."
        )
    return canonical, spec.weights[canonical]


def _tag_list(spec: EncoderSpec) -> str:
    return ", ".join(repr(t) for t in spec.weights) or "none"


# -- the cache -------------------------------------------------------------------------------
def cached_path(spec: EncoderSpec, tag: str, source: WeightSource) -> Path:
    """Where the file of ``tag`` is kept in the cache (whether or not it is there)."""
    return cache_dir() / spec.name / source.cache_filename(spec.name, tag)


def fetch(spec: EncoderSpec, tag: str, source: WeightSource) -> Path:
    """The local path of the weights of ``tag``, verified, downloading them if needed and allowed.

    Raises ``WeightsNotFoundError`` when the file is not cached and cannot be downloaded,
    ``ChecksumError`` when the cached file is corrupt and cannot be downloaded again, and
    ``WeightsError`` when the cache directory cannot be used.
    """
    path = cached_path(spec, tag, source)
    what = f"weights {tag!r} of encoder {spec.name!r}"
    problem = _folder_problem(path.parent)
    if problem is not None:
        raise _cache_error(path.parent, problem)
    try:
        in_the_way = path.exists() and not path.is_file()
    except OSError as error:  # a folder without search permission
        raise _cache_error(path.parent, f"{path} cannot be read "
                                        f"({error.strerror or error})") from error
    if in_the_way:
        raise _cache_error(path.parent, f"{path} is in the way: it is not a regular file; "
                                        f"remove it")
    total, _ = download_timeouts()
    _remove_stale_parts(path.parent, older_than_s=total)
    # A file:// source is local: copying it into the cache needs no network, even offline.
    no_network = offline() and not (source.url or "").startswith("file://")
    corrupt: tuple[str, str] | None = None
    if path.is_file():
        corrupt = _check_cached_file(path, what, source.sha256)
        if corrupt is None:
            return path
        if source.url is None or no_network:
            raise _corrupt_error(path, what, *corrupt, url=source.url)
    elif source.url is None:
        raise WeightsNotFoundError(
            f"{what} are not in the cache and have no download address: put the file at "
            f"{path}, or pass encoder_weights='/path/to/file.safetensors'."
        )
    elif no_network:
        raise WeightsNotFoundError(
            f"{what} are not cached and {OFFLINE_VARIABLE} is set: download {source.url} on a "
            f"machine with internet and put the file at {path}."
        )
    assert source.url is not None
    try:
        _writable_folder(path.parent)
        with _download_lock(path, what):
            # Another process may have downloaded (or repaired) the file while this one waited.
            if path.is_file() and _check_cached_file(path, what, source.sha256) is None:
                return path
            _remove_own_parts(path)
            digest = _download(source.url, path, source.sha256, what)
            _remember(path, digest)
    except WeightsError as error:
        if corrupt is None:
            raise
        raise _corrupt_error(path, what, *corrupt, url=source.url, retry=error) from error
    return path


def _folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be the cache directory (a file is in the way...), else ``None``."""
    for candidate in (folder, *folder.parents):
        try:
            mode = candidate.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # not there (yet); a file further up is found on a later turn
        except OSError as error:
            return f"{candidate} cannot be read ({error.strerror or error})"
        if not stat.S_ISDIR(mode):
            return f"{candidate} is not a directory"
        return None
    return None


def _writable_folder(folder: Path) -> None:
    """Create ``folder`` and check that files can be written in it (``WeightsError`` if not)."""
    problem = _folder_problem(folder)
    if problem is not None:
        raise _cache_error(folder, problem)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", suffix=PART_SUFFIX, dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise _cache_error(folder, f"files cannot be written there "
                                   f"({error.strerror or error})") from error


def _cache_error(folder: Path, reason: str) -> WeightsError:
    setting = os.environ.get(CACHE_VARIABLE)
    now = (f"it is {CACHE_VARIABLE}={setting!r}" if setting
           else f"{CACHE_VARIABLE} is not set, so the default {cache_dir()} is used")
    return WeightsError(
        f"cannot use the weights cache folder {folder}: {reason}. Set {CACHE_VARIABLE} to a "
        f"writable directory ({now})."
    )


def _remove_stale_parts(folder: Path, older_than_s: float) -> None:
    """Delete ``*.part`` files in ``folder`` untouched for ``older_than_s`` seconds.

    A download in progress writes to its part file at least once per stall timeout and ends
    within the total deadline, so an older part file belongs to a process that was killed.
    """
    limit = time.time() - older_than_s
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.endswith(PART_SUFFIX):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < limit:
                        os.unlink(entry.path)


def _remove_own_parts(path: Path) -> None:
    """Delete part files of ``path``: with its lock held, no live download owns them."""
    prefix = path.name + "."
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(PART_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _lock_path(path: Path) -> Path:
    """The lock file of ``path``: ``<cache>/.locks/<encoder>/<file>.lock`` for a file of the
    cache (its folder stays clean), ``<file>.lock`` next to any other file."""
    root = cache_dir()
    try:
        relative = path.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return path.with_name(path.name + LOCK_SUFFIX)
    return root / ".locks" / relative.with_name(relative.name + LOCK_SUFFIX)


@contextlib.contextmanager
def _download_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock file of ``path``; other threads and processes wait for it."""
    from filelock import FileLock, Timeout

    total, stall = download_timeouts()
    lock_path = _lock_path(path)
    lock = FileLock(lock_path, timeout=total + 2 * stall)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout as error:
        raise WeightsNotFoundError(
            f"another process has been downloading {what} to {path} for more than "
            f"{total + 2 * stall:g} s (it holds {lock_path}). Wait for it, or, if no such "
            f"process is running, delete {lock_path}."
        ) from error
    except OSError as error:
        raise _cache_error(path.parent, f"the lock file {lock_path} cannot be used "
                                        f"({error.strerror or error})") from error
    try:
        yield
    finally:
        lock.release()


# -- verification of cached files ------------------------------------------------------------
def _check_cached_file(path: Path, what: str, expected: str | None) -> tuple[str, str] | None:
    try:
        return _check_cached(path, expected)
    except OSError as error:
        raise WeightsFileError(
            f"the cached file of {what}, {path}, cannot be read ({error.strerror or error}): "
            f"check its permissions, or delete it so that it is downloaded again."
        ) from error


def _check_cached(path: Path, expected: str | None) -> tuple[str, str] | None:
    """``None`` when the cached file ``path`` is intact, else ``(actual, expected)`` digests.

    The expected digest is the spec's, else the one recorded when the file was downloaded (or
    first used). The file is hashed only when this process has not verified it yet and its
    size or modification time differ from the record.
    """
    info = path.stat()
    key = (info.st_size, info.st_mtime_ns)
    memo = _VERIFIED.get(str(path))
    if memo is not None and memo[:2] == key and (expected is None or memo[2] == expected):
        return None
    record = _read_record(path)
    reference = expected or (record[2] if record else None)
    if record is not None and record[:2] == key and record[2] == reference:
        actual = record[2]
    else:
        actual = sha256_of(path)
    if reference is None:  # placed by hand, no digest known: trust it from now on
        reference = actual
    if actual != reference:
        return actual, reference
    _remember(path, actual)
    return None


def _remember(path: Path, digest: str) -> None:
    """Record ``digest`` as verified for ``path`` in this process and in its record file."""
    info = path.stat()
    _VERIFIED[str(path)] = (info.st_size, info.st_mtime_ns, digest)
    if _read_record(path) == (info.st_size, info.st_mtime_ns, digest):
        return
    record = path.with_name(path.name + RECORD_SUFFIX)
    content = json.dumps({"sha256": digest, "size": info.st_size, "mtime_ns": info.st_mtime_ns})
    try:  # best effort: a read-only cache still works, it is only hashed once per process
        handle, temporary = tempfile.mkstemp(prefix="." + record.name + ".",
                                             suffix=PART_SUFFIX, dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as output:
            output.write(content)
        os.replace(temporary, record)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _read_record(path: Path) -> tuple[int, int, str] | None:
    """``(size, mtime_ns, sha256)`` from the record file of ``path``, if there is a valid one."""
    try:
        data = json.loads(path.with_name(path.name + RECORD_SUFFIX).read_text(encoding="utf-8"))
        size, mtime_ns, digest = data["size"], data["mtime_ns"], data["sha256"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not (isinstance(size, int) and isinstance(mtime_ns, int) and isinstance(digest, str)
            and _HEX64.match(digest)):
        return None
    return size, mtime_ns, digest


def _corrupt_error(path: Path, what: str, actual: str, expected: str, url: str | None,
                   retry: BaseException | None = None) -> ChecksumError:
    if retry is not None:
        fix = (f"Downloading it again failed: {retry} Delete {path} and put a good copy "
               f"there (from {url}).")
    elif url is None:
        fix = f"Delete it and put a good copy at {path}."
    else:
        fix = (f"{OFFLINE_VARIABLE} is set, so it is not downloaded again: delete it and "
               f"download {url} to {path} (or unset {OFFLINE_VARIABLE}).")
    return ChecksumError(
        f"the cached file of {what}, {path}, is corrupt or was replaced: its sha256 is "
        f"{actual}, expected {expected}. {fix}"
    )


# -- downloads -------------------------------------------------------------------------------
def download(url: str, destination: Path, sha256: str | None = None, what: str = "file") -> Path:
    """Download ``url`` to ``destination``, verified by sha256, written atomically.

    The expected digest is ``sha256`` or, when that is ``None``, the one the server reports
    for a pinned Hugging Face revision (``X-Linked-Etag``). Without either the download is
    refused (``ChecksumError``): segcore never keeps an unverified file. A download that
    cannot happen (no network, an HTTP error, a timeout, a cut transfer) raises
    ``WeightsNotFoundError``. Only one process downloads to ``destination`` at a time.
    """
    destination = Path(destination)
    _writable_folder(destination.parent)
    with _download_lock(destination, what):
        _download(url, destination, sha256, what)
    return destination


def _download(url: str, destination: Path, sha256: str | None, what: str) -> str:
    """Download without taking the lock; returns the verified digest."""
    total, stall = download_timeouts()
    expected = sha256.lower() if sha256 else _reported_sha256(url, destination, what, stall)
    if expected is None:
        raise ChecksumError(
            f"refusing to download {what} from {url}: no sha256 is known for it. Download it "
            f"yourself, check it, and put it at {destination}."
        )
    try:
        handle, temporary = tempfile.mkstemp(prefix=destination.name + ".", suffix=PART_SUFFIX,
                                             dir=destination.parent)
    except OSError as error:
        raise _cache_error(destination.parent, f"files cannot be written there "
                                               f"({error.strerror or error})") from error
    try:
        with os.fdopen(handle, "wb") as output:
            actual = _transfer(url, output, temporary, destination, what, total, stall)
        if actual != expected:
            raise ChecksumError(
                f"{what} downloaded from {url} has sha256 {actual}, expected {expected}; the "
                f"file was discarded. The source may have changed or the transfer was corrupted."
            )
        try:
            os.replace(temporary, destination)
        except OSError as error:
            raise _cache_error(destination.parent, f"{destination} cannot be written "
                                                   f"({error.strerror or error})") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return actual


class _DownloadFailed(Exception):
    """Why a transfer failed, in words (turned into a ``WeightsNotFoundError``)."""


def _transfer(url: str, output: BinaryIO, temporary: str, destination: Path, what: str,
              total: float, stall: float) -> str:
    """Copy ``url`` into ``output`` within the deadlines; returns the sha256 of the bytes."""
    digest = hashlib.sha256()
    start = time.monotonic()
    received = 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=min(stall, total)) as response:
            declared = _declared_length(response)
            read = getattr(response, "read1", response.read)
            while True:
                if time.monotonic() - start > total:
                    raise _DownloadFailed(_total_timeout_reason(total, received))
                chunk = read(_CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                digest.update(chunk)
                try:
                    output.write(chunk)
                except OSError as error:
                    reason = f"{temporary} cannot be written ({error.strerror or error})"
                    raise _cache_error(destination.parent, reason) from error
            if declared is not None and received != declared:
                raise _DownloadFailed(f"the connection was closed after {received} of "
                                      f"{declared} bytes")
    except WeightsError:
        raise
    except Exception as error:
        elapsed = time.monotonic() - start
        raise _not_downloaded(url, destination, what,
                              _failure_reason(error, elapsed, total, stall, received)) from error
    return digest.hexdigest()


def _declared_length(response: Any) -> int | None:
    value = (response.headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _failure_reason(error: BaseException, elapsed: float, total: float, stall: float,
                    received: int) -> str:
    """What went wrong with a transfer, in words, with the setting to change if it is one."""
    if isinstance(error, _DownloadFailed):
        return str(error)
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered HTTP {error.code} {error.reason}"
    reason: Any = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        if elapsed >= total:
            return _total_timeout_reason(total, received)
        return (f"no data arrived for {stall:g} s ({STALL_TIMEOUT_VARIABLE}={stall:g}; set it "
                f"higher for a slow connection)")
    if isinstance(error, http.client.IncompleteRead):
        return f"the transfer was cut after {received + len(error.partial)} bytes"
    if isinstance(error, http.client.HTTPException):
        return f"the server sent an invalid answer ({type(error).__name__}: {error})"
    return f"{type(reason).__name__}: {reason}" if isinstance(reason, Exception) else str(reason)


def _total_timeout_reason(total: float, received: int) -> str:
    return (f"the download did not finish within {total:g} s ({received} bytes arrived; "
            f"{TIMEOUT_VARIABLE}={total:g}: set it higher for a slow connection)")


def _not_downloaded(url: str, destination: Path, what: str, reason: str) -> WeightsNotFoundError:
    return WeightsNotFoundError(
        f"could not download {what} from {url}: {reason}. Nothing was kept. If this machine "
        f"cannot reach it, download the file elsewhere and put it at {destination}; set "
        f"{OFFLINE_VARIABLE}=1 to stop segcore from trying to download."
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _reported_sha256(url: str, destination: Path, what: str, stall: float) -> str | None:
    """The sha256 a Hugging Face server reports for a file at a pinned revision, if any.

    ``None`` when the URL is not a pinned revision, or the server answered without a digest;
    ``WeightsNotFoundError`` when it could not be asked (no network, an error status...).
    """
    if "/resolve/" not in url:
        return None
    revision = url.split("/resolve/", 1)[1].split("/", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{40}", revision):  # only immutable commits are trusted
        return None
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    start = time.monotonic()
    try:
        with opener.open(request, timeout=stall) as response:
            headers = response.headers
    except urllib.error.HTTPError as error:  # a 3xx answer arrives as an HTTPError here
        if not 300 <= error.code < 400:
            raise _not_downloaded(url, destination, what,
                                  f"asking for its sha256, the server answered HTTP "
                                  f"{error.code} {error.reason}") from error
        headers = error.headers
    except Exception as error:
        reason = _failure_reason(error, time.monotonic() - start, float("inf"), stall, 0)
        raise _not_downloaded(url, destination, what,
                              f"asking for its sha256 failed: {reason}") from error
    for header in ("X-Linked-Etag", "ETag"):
        value = (headers.get(header) or "").strip().removeprefix("W/").strip('"').lower()
        if _HEX64.match(value):
            return value
    return None


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- reading files ---------------------------------------------------------------------------
def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a safetensors or torch file without running any code.

    A checkpoint that wraps the weights (``{"state_dict": ...}`` or ``{"model": ...}``) is
    unwrapped. Raises ``WeightsNotFoundError`` for a missing file and ``WeightsFileError`` for a
    directory, an unreadable, truncated, corrupt or unsafe file.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise WeightsFileError(_directory_message(path))
    if not path.exists():
        raise WeightsNotFoundError(
            f"weights file {str(path)!r} does not exist. Check the path, or pass a tag such as "
            f"encoder_weights='imagenet'."
        )
    if not path.is_file():
        raise WeightsFileError(
            f"weights path {str(path)!r} is not a regular file (a device, socket or pipe): pass "
            f"a .safetensors or .pth file."
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise WeightsFileError(
            f"weights file {str(path)!r} cannot be read ({error.strerror or error})."
        ) from error
    if not head:
        raise WeightsFileError(
            f"weights file {str(path)!r} is empty (0 bytes): it is truncated or corrupt; "
            f"download or save it again."
        )
    if path.suffix == ".safetensors" or _looks_like_safetensors(head):
        state = _load_safetensors(path)
    else:
        state = _load_torch(path)
    return _unwrap(state, path)


def _directory_message(path: Path) -> str:
    try:
        inside = sorted(p.name for p in path.iterdir()
                        if p.suffix in WEIGHT_FILE_SUFFIXES and p.is_file())
    except OSError:
        inside = []
    found = f" It holds {', '.join(inside[:5])}." if inside else ""
    return (
        f"weights path {str(path)!r} is a directory, not a weights file: pass a .safetensors "
        f"or .pth file with the encoder's state dict.{found} A folder written by "
        f"save_pretrained keeps the whole model's weights in "
        f"{str(path / 'model.safetensors')!r}: load it with segcore.from_pretrained("
        f"{str(path)!r})."
    )


def _looks_like_safetensors(head: bytes) -> bool:
    return len(head) > 9 and head[8:9] == b"{"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except BaseException as error:
        if not _is_failure(error):
            raise
        raise WeightsFileError(
            f"weights file {str(path)!r} is not a valid safetensors file "
            f"({_first_line(error) or type(error).__name__}); it may be truncated or corrupt: "
            f"download it again."
        ) from error


def _load_torch(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # protocol notes on foreign pickles
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickler_reason(error)
        if reason is None or reason.startswith("Unsupported operand"):
            # Not a refusal of an object: bytes that are no pickle torch writes.
            raise _corrupt_file(path, error, reason) from error
        raise WeightsFileError(
            f"refusing to load {str(path)!r}: it contains pickled objects other than tensors, "
            f"which could run code ({reason}). Convert it to safetensors where you trust its "
            f"origin; if it should hold plain tensors, it is corrupt: download it again."
        ) from error
    except BaseException as error:
        if not _is_failure(error):
            raise
        raise _corrupt_file(path, error) from error


def _corrupt_file(path: Path, error: BaseException, reason: str | None = None
                  ) -> WeightsFileError:
    detail = reason or _first_line(error)
    detail = type(error).__name__ + (f": {detail}" if detail else "")
    return WeightsFileError(
        f"weights file {str(path)!r} is truncated or corrupt, or not a torch file ({detail}); "
        f"download or save it again."
    )


def _is_failure(error: BaseException) -> bool:
    """An error that says a file could not be read (a Rust panic of safetensors included),
    as opposed to an interruption (KeyboardInterrupt, SystemExit)."""
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


def _unpickler_reason(error: BaseException) -> str | None:
    """What torch's weights-only unpickler refused (``"Unsupported global: GLOBAL print ..."``),
    or ``None`` when the error does not come from it."""
    message = str(error)
    marker = "WeightsUnpickler error:"
    if not message.startswith("Weights only load failed") or marker not in message:
        return None
    reason = message.split(marker, 1)[1]
    reason = reason.split("Check the documentation of torch.load", 1)[0].split(". Please use", 1)[0]
    return " ".join(reason.split())[:300] or None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""


def _unwrap(state: Any, path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsFileError(
            f"weights file {str(path)!r} does not hold a state dict (a mapping of names to "
            f"tensors)."
        )
    return dict(state)


@attrs.frozen
class LoadReport:
    """What ``load_fitting`` did: tensors loaded, and those it left out with the reason."""

    loaded: tuple[str, ...]
    #: ``(key, shape in the file, shape in the model)`` of tensors that did not fit
    skipped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    #: keys of the model that the file lacks (they keep their initialisation)
    missing: tuple[str, ...]
    #: keys of the file that the model lacks (ignored)
    unexpected: tuple[str, ...]


STRICT_REMEDY = ("To fine-tune, load with strict=False: tensors that fit are kept, the others "
                 "keep their initialisation and a warning lists them.")


def load_fitting(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, strict: bool,
                 what: str = "the state dict", assign: bool = False,
                 remedy: str = STRICT_REMEDY) -> LoadReport:
    """Load ``state`` into ``module``; with ``strict=False`` keep every tensor that fits.

    ``strict=True``: every key must be there with the model's shape, else ``WeightsFileError``
    naming the first mismatch (key and both shapes) and the ``strict=False`` remedy.
    ``strict=False`` (fine-tuning with another class count, another head): tensors whose shape
    differs are skipped and keep their initialisation, missing keys too, unexpected keys are
    ignored; one ``SkippedWeightsWarning`` lists them. ``remedy`` ends the strict error.

    Example::

        model = segcore.build("unet", encoder="resnet34", classes=5)
        report = load_fitting(model, load_state_dict("three_classes.safetensors"), strict=False)
        report.skipped   # (('segmentation_head.0.weight', (3, 16, 3, 3), (5, 16, 3, 3)), ...)
    """
    if not isinstance(state, Mapping):
        raise WeightsFileError(
            f"{what} must be a mapping of names to tensors (a state dict), got "
            f"{type(state).__name__}"
        )
    expected = module.state_dict()
    missing = tuple(k for k in expected if k not in state)
    unexpected = tuple(k for k in state if k not in expected)
    not_tensors = [k for k in state if k in expected and not isinstance(state[k], torch.Tensor)]
    if not_tensors:
        raise WeightsFileError(
            f"{what}: {not_tensors[0]!r} is a {type(state[not_tensors[0]]).__name__}, not a "
            f"tensor; a state dict maps names to tensors."
        )
    skipped = tuple(
        (k, tuple(state[k].shape), tuple(expected[k].shape))
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    )
    if (missing or unexpected) and not skipped:
        # Keys can differ only in name: modules may rename older keys in a load_state_dict
        # pre-hook (e.g. a decoder that was once an nn.Sequential); torch applies those hooks.
        try:
            torch.nn.Module.load_state_dict(module, state, strict=True, assign=assign)
        except RuntimeError:
            pass
        else:
            return LoadReport(loaded=tuple(sorted(state)), skipped=(), missing=(),
                              unexpected=())
    if strict and (missing or unexpected or skipped):
        raise WeightsFileError(_mismatch_message(what, missing, unexpected, skipped, remedy))
    names = {key for key, _, _ in skipped}
    fitting = {k: v for k, v in state.items() if k in expected and k not in names}
    torch.nn.Module.load_state_dict(module, fitting, strict=strict, assign=assign)
    if skipped or missing or unexpected:
        lines = [f"  {k}: file {list(a)} -> model {list(b)}" for k, a, b in skipped]
        lines += [f"  {k}: not in the file (keeps its initialisation)" for k in missing]
        lines += [f"  {k}: not in the model (ignored)" for k in unexpected]
        warnings.warn(
            f"loading {what} with strict=False left {len(lines)} tensor(s) out; train the model "
            f"before using it (the re-initialised parts are random):\n" + "\n".join(lines),
            SkippedWeightsWarning,
            stacklevel=3,
        )
    return LoadReport(loaded=tuple(sorted(fitting)), skipped=skipped, missing=missing,
                      unexpected=unexpected)


def _mismatch_message(what: str, missing: Sequence[str], unexpected: Sequence[str],
                      skipped: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]],
                      remedy: str) -> str:
    parts = []
    if skipped:
        key, in_file, in_model = skipped[0]
        parts.append(f"{len(skipped)} shape mismatches, the first {key!r}: file "
                     f"{list(in_file)} vs model {list(in_model)}")
    if missing:
        parts.append(f"{len(missing)} missing key(s) (e.g. {list(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {list(unexpected[:3])})")
    hint = ("The file was probably saved from a different architecture or encoder."
            if missing or unexpected else
            "The model was built with other sizes (classes, in_channels, decoder channels).")
    return f"{what} do not fit this model: {'; '.join(parts)}. {hint} {remedy}".rstrip()


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with an error that explains a mismatch."""
    load_fitting(module, state, strict=True, what=what, remedy="")
