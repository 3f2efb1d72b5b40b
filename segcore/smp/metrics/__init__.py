"""``smp.metrics``: SMP 0.6.0's metrics, served by the segcore-metrics plugin.

Example::

    import segcore.smp as smp
    tp, fp, fn, tn = smp.metrics.get_stats(logits.argmax(1), mask, mode="multiclass",
                                           num_classes=3)
    smp.metrics.iou_score(tp, fp, fn, tn, reduction="micro")

The score functions are the ones the installed metrics plugin registers
(``segcore.get_metric``); ``get_stats`` comes from the same module as the registered
``iou_score``. segcore's fixes apply (docs/metrics.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from segcore.errors import MissingDependencyError, UnknownNameError
from segcore.smp import missing

#: SMP 0.6.0's score functions.
SCORES: tuple[str, ...] = (
    "fbeta_score",
    "f1_score",
    "iou_score",
    "accuracy",
    "precision",
    "recall",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "positive_predictive_value",
    "negative_predictive_value",
    "false_negative_rate",
    "false_positive_rate",
    "false_discovery_rate",
    "false_omission_rate",
    "positive_likelihood_ratio",
    "negative_likelihood_ratio",
)

__all__ = ["get_stats", *SCORES]


def _metric(name: str) -> Callable[..., Any]:
    import segcore

    try:
        return segcore.get_metric(name)
    except UnknownNameError as error:
        raise missing(name, error, __name__) from None


def _get_stats() -> Callable[..., Any]:
    """``get_stats`` of the plugin that provides ``iou_score`` (segcore-metrics)."""
    from segcore.registry import get_registry

    try:
        entry = get_registry().entry("metrics", "iou_score")
    except UnknownNameError as error:
        raise missing("get_stats", error, __name__) from None
    factory = entry.spec.factory
    module_name = (factory.partition(":")[0] if isinstance(factory, str)
                   else getattr(factory, "__module__", ""))
    function = getattr(importlib.import_module(module_name), "get_stats", None)
    if function is None:
        raise MissingDependencyError(
            f"{__name__}.get_stats is not available: the metrics plugin {entry.plugin!r} "
            f"({entry.distribution or 'no distribution'}) provides iou_score but no get_stats "
            f"beside it in {module_name!r}; segcore-metrics provides both: "
            f"`pip install segcore-metrics`."
        )
    return function


def __getattr__(name: str) -> Any:
    if name == "get_stats":
        return _get_stats()
    if name in SCORES:
        return _metric(name)
    if name == "functional":
        return importlib.import_module(f"{__name__}.functional")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, "SCORES", "functional"})
