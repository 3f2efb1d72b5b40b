"""Exception types raised by segcore.

Every error says what was wrong and how to fix it. They subclass the built-in exception a
user would naturally catch (``ValueError``, ``KeyError``, ``FileNotFoundError``...), so code
written for SMP keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SegcoreError(Exception):
    """Base class of every segcore error."""


class UnknownNameError(SegcoreError, KeyError):
    """A name (architecture, encoder, head, loss, metric) that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(SegcoreError, ValueError):
    """Two plugins provide the same name."""


class PluginLoadError(SegcoreError, RuntimeError):
    """A plugin failed to load while strict mode (``SEGCORE_STRICT_PLUGINS=1``) is on."""


class BrokenPluginError(SegcoreError, ImportError):
    """An installed plugin's spec references code that cannot be imported (``"module:attr"``)."""


class InvalidOptionError(SegcoreError, ValueError):
    """An option has a wrong value, type or length, or does not exist."""


class UnknownOptionError(InvalidOptionError, TypeError):
    """A keyword argument that the architecture or encoder does not take."""


class InvalidTargetError(SegcoreError, ValueError):
    """A loss or metric input (prediction or target tensor) of the wrong shape, type or values."""


class EncoderCapabilityError(SegcoreError, ValueError):
    """The encoder cannot do what the architecture needs (dilation, depth...)."""


class InputShapeError(SegcoreError, RuntimeError):
    """The input tensor has a shape the model cannot take."""


class InputTypeError(SegcoreError, TypeError):
    """The input tensor has a dtype/type the model cannot take."""


class WeightsError(SegcoreError, ValueError):
    """A weights tag, file or download cannot be used."""


class UnknownWeightsError(WeightsError, KeyError):
    """A weights tag that the encoder does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WeightsFileError(WeightsError):
    """A weights file is missing, truncated, unsafe, or belongs to another model."""


class WeightsNotFoundError(WeightsFileError, FileNotFoundError):
    """A weights file that does not exist, or that cannot be downloaded (offline)."""


class ChecksumError(WeightsError):
    """A downloaded file whose sha256 differs from the expected one."""


class MissingDependencyError(SegcoreError, ImportError):
    """An optional package that the requested feature needs is not installed."""


class ConfigurationWarning(UserWarning):
    """An environment variable or setting whose value segcore does not understand."""


class SkippedWeightsWarning(UserWarning):
    """``strict=False`` loading left tensors out (other shapes, missing or unexpected keys)."""


def suggest(name: str, candidates: Iterable[str], limit: int = 5) -> list[str]:
    """Close matches of ``name`` among ``candidates``, best first."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.6)
    result = [lowered[m] for m in matches]
    # Names that start with a short query ("f1" -> "f1_score").
    if len(result) < limit and len(name) >= 2:
        for candidate in sorted(candidates):
            if candidate.lower().startswith(name.lower()) and candidate not in result:
                result.append(candidate)
            if len(result) >= limit:
                break
    # Also offer names that contain the query (e.g. "resnet" -> "resnet18", "resnet34").
    if len(result) < limit and len(name) >= 3:
        for candidate in sorted(candidates):
            if name.lower() in candidate.lower() and candidate not in result:
                result.append(candidate)
            if len(result) >= limit:
                break
    return result


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' sentence, or an empty string when nothing is close."""
    matches = suggest(name, candidates)
    if not matches:
        return ""
    return " Did you mean " + ", ".join(repr(m) for m in matches) + "?"
