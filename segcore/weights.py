"""Pretrained weights: tags to sources, the cache, verified downloads, safe file loading.

* ``encoder_weights`` is ``None``, a tag of the encoder's spec (``"imagenet"``, ``"ssl"``...)
  or a path to a ``.safetensors``/``.pth``/``.pt``/``.bin`` file.
* Files of tags live in the cache directory: ``$SEGCORE_CACHE``, else
  ``$XDG_CACHE_HOME/segcore``, else ``~/.cache/segcore``.
* A download happens only when the file is not cached, the tag has a URL, and
  ``SEGCORE_OFFLINE`` is not set. It is checked against the sha256 of the source (or, for a
  pinned Hugging Face revision, the digest the hub reports) and moved into place atomically.
* Loading never runs code: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from segcore.errors import (
    ChecksumError,
    UnknownWeightsError,
    WeightsFileError,
    WeightsNotFoundError,
)
from segcore.specs import EncoderSpec, WeightSource

CACHE_VARIABLE = "SEGCORE_CACHE"
OFFLINE_VARIABLE = "SEGCORE_OFFLINE"
WEIGHT_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
USER_AGENT = "segcore-weights/1"
DOWNLOAD_TIMEOUT_S = 60.0


def cache_dir() -> Path:
    """The directory where weight files of tags are kept."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "segcore"


def offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


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


def cached_path(spec: EncoderSpec, tag: str, source: WeightSource) -> Path:
    return cache_dir() / spec.name / source.cache_filename(spec.name, tag)


def fetch(spec: EncoderSpec, tag: str, source: WeightSource) -> Path:
    """The local path of the weights of ``tag``, downloading them if needed and allowed."""
    path = cached_path(spec, tag, source)
    if path.is_file():
        return path
    where = f"put the file at {path}"
    if source.url is None:
        raise WeightsNotFoundError(
            f"weights {tag!r} of encoder {spec.name!r} are not in the cache and have no download "
            f"address: {where}, or pass encoder_weights='/path/to/file.safetensors'."
        )
    if offline():
        raise WeightsNotFoundError(
            f"weights {tag!r} of encoder {spec.name!r} are not cached and {OFFLINE_VARIABLE} is "
            f"set: download {source.url} on a machine with internet and {where}."
        )
    download(source.url, path, sha256=source.sha256, what=f"weights {tag!r} of {spec.name!r}")
    return path


def download(url: str, destination: Path, sha256: str | None = None, what: str = "file") -> Path:
    """Download ``url`` to ``destination``, verified by sha256, written atomically.

    The expected digest is ``sha256`` or, when that is ``None``, the one the server reports
    for a pinned Hugging Face revision (``X-Linked-Etag``). Without either the download is
    refused: segcore never keeps an unverified file.
    """
    expected = sha256.lower() if sha256 else _reported_sha256(url)
    if expected is None:
        raise ChecksumError(
            f"refusing to download {what} from {url}: no sha256 is known for it. Download it "
            f"yourself, check it, and put it at {destination}."
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part",
                                         dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as output:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    output.write(chunk)
        actual = digest.hexdigest()
        if actual != expected:
            raise ChecksumError(
                f"{what} downloaded from {url} has sha256 {actual}, expected {expected}; the "
                f"file was discarded. The source may have changed or the transfer was corrupted."
            )
        os.replace(temporary, destination)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise WeightsNotFoundError(
            f"could not download {what} from {url} ({error}). If this machine is offline, "
            f"download the file elsewhere and put it at {destination}."
        ) from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return destination


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _reported_sha256(url: str) -> str | None:
    """The sha256 a Hugging Face server reports for a file at a pinned revision, if any."""
    if "/resolve/" not in url:
        return None
    revision = url.split("/resolve/", 1)[1].split("/", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{40}", revision):  # only immutable commits are trusted
        return None
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        response = opener.open(request, timeout=DOWNLOAD_TIMEOUT_S)
        headers = response.headers
    except urllib.error.HTTPError as error:  # a 3xx answer arrives as an HTTPError here
        headers = error.headers
    except (urllib.error.URLError, OSError):
        return None
    for header in ("X-Linked-Etag", "ETag"):
        value = (headers.get(header) or "").strip().removeprefix("W/").strip('"').lower()
        if _HEX64.match(value):
            return value
    return None


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a safetensors or torch file without running any code.

    A checkpoint that wraps the weights (``{"state_dict": ...}`` or ``{"model": ...}``) is
    unwrapped. Raises ``WeightsNotFoundError`` for a missing file and ``WeightsFileError`` for a
    truncated, corrupt or unsafe one.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"weights file {str(path)!r} does not exist. Check the path, or pass a tag such as "
            f"encoder_weights='imagenet'."
        )
    with open(path, "rb") as handle:
        head = handle.read(16)
    if path.suffix == ".safetensors" or _looks_like_safetensors(head):
        state = _load_safetensors(path)
    else:
        state = _load_torch(path)
    return _unwrap(state, path)


def _looks_like_safetensors(head: bytes) -> bool:
    return len(head) > 9 and head[8:9] == b"{"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsFileError(
            f"weights file {str(path)!r} is not a valid safetensors file ({error}); it may be "
            f"truncated or corrupt: download it again."
        ) from error


def _load_torch(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # protocol notes on foreign pickles
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsFileError(
            f"refusing to load {str(path)!r}: it contains pickled objects other than tensors, "
            f"which could run code ({_first_line(error)}). Convert it to safetensors where you "
            f"trust its origin."
        ) from error
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError, OSError) as error:
        raise WeightsFileError(
            f"weights file {str(path)!r} is truncated or corrupt ({_first_line(error)}); "
            f"download it again."
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _unwrap(state: Any, path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise WeightsFileError(
            f"weights file {str(path)!r} does not hold a state dict (a mapping of names to "
            f"tensors)."
        )
    return dict(state)


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with an error that explains a mismatch."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} shape mismatches (e.g. {wrong_shape[:2]})")
        raise WeightsFileError(
            f"{what} do not fit this model: {'; '.join(parts)}. The file was probably saved "
            f"from a different architecture or encoder."
        )
    module.load_state_dict(state, strict=True)
