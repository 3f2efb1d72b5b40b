"""Checkpoints of a training run: atomic writes, RNG states, safe loading.

``save_checkpoint`` writes to a temporary file in the same folder, flushes and fsyncs it,
renames it over the target (``os.replace``, atomic on POSIX and Windows) and fsyncs the folder:
at every moment the target holds either the previous complete checkpoint or the new one. A
failing write (disk full...) removes the temporary file and raises ``CheckpointError`` naming
the path; the previous checkpoint stays intact.

``load_checkpoint`` reads with ``torch.load(weights_only=True)`` (no code can run), so the
state holds tensors, numbers, strings, lists and dicts only: ``rng_state()`` turns NumPy's
state into tensors for that reason.

Example::

    save_checkpoint({"model": model.state_dict(), "rng": rng_state()}, run / "last.pt")
    state = load_checkpoint(run / "last.pt")
    set_rng_state(state["rng"])
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segcore_train.errors import CheckpointError

__all__ = ["load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` (``torch.save``) to ``path`` atomically; returns ``path``.

    Raises ``CheckpointError`` naming ``path`` when the write fails; the file at ``path``, if
    any, is then the previous checkpoint, untouched.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch.save reports some write errors as such
        with contextlib.suppress(OSError):
            temporary.unlink()
        reason = getattr(error, "strerror", None) or str(error)
        raise CheckpointError(
            f"could not write the checkpoint {path}: {reason}; the previous checkpoint (if "
            "any) is unchanged. Free disk space or choose another run folder "
            "(--run-dir), then resume with --resume") from error
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (``weights_only=True``).

    Raises ``CheckpointError`` naming the file when it is missing, truncated or not a
    checkpoint of segcore-train.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: the run folder holds last.pt once "
                              "a run has written its first checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and torch raise many types for a broken file
        raise CheckpointError(
            f"the checkpoint {path} cannot be read ({type(error).__name__}: {error}); it is "
            "truncated or not a segcore-train checkpoint. Start a new run, or resume from a "
            "copy of the run folder with an intact last.pt") from error
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is not a segcore-train checkpoint (no 'format' entry)")
    return state


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": _python_state_to_lists(random.getstate()),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"],
                         numpy_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _python_state_to_lists(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]
