"""``smp.metrics.functional``: the same names as ``segcore.smp.metrics`` (SMP scripts that
import from ``segmentation_models_pytorch.metrics.functional``)."""

from __future__ import annotations

from typing import Any

from segcore.smp import metrics as _metrics

__all__ = list(_metrics.__all__)


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(_metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
