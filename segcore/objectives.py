"""Losses and metrics by name: mode constants, ``build_loss``, ``get_metric`` and listings.

The losses and metrics themselves come from plugins (``segcore-losses``, ``segcore-metrics``)
through the ``segcore_losses`` / ``segcore_metrics`` hooks.

Example::

    loss = segcore.build_loss("dice", mode="multiclass")
    loss = segcore.build_loss({"dice": 1.0, "focal": 0.5}, mode="binary")
    total = loss(logits, target); loss.last_values   # {"dice": ..., "focal": ...}
    iou = segcore.get_metric("iou_score")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from segcore import BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE
from segcore.errors import InvalidOptionError
from segcore.registry import get_registry
from segcore.specs import load

MODES = (BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE)


def list_losses(pattern: str | None = None) -> list[str]:
    """Names of the installed losses (``segcore.build_loss`` builds them)."""
    return get_registry().names("losses", pattern)


def list_metrics(pattern: str | None = None) -> list[str]:
    """Names of the installed metric functions."""
    return get_registry().names("metrics", pattern)


def get_loss_class(name: str) -> Callable[..., nn.Module]:
    """The class (or factory) of an installed loss."""
    return load(get_registry().get("losses", name).factory)


def get_metric(name: str) -> Callable[..., Any]:
    """An installed metric function, e.g. ``get_metric("iou_score")(tp, fp, fn, tn, ...)``."""
    return load(get_registry().get("metrics", name).factory)


class WeightedSumLoss(nn.Module):
    """A weighted sum of losses; ``forward`` returns the total.

    ``last_values`` holds each term's last (unweighted, detached) value for logging.
    """

    def __init__(self, losses: Mapping[str, nn.Module], weights: Mapping[str, float]) -> None:
        super().__init__()
        if not losses:
            raise InvalidOptionError("a combined loss needs at least one term")
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = dict(weights)
        self.last_values: dict[str, torch.Tensor] = {}

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        total: torch.Tensor | None = None
        values: dict[str, torch.Tensor] = {}
        for name, loss in self.losses.items():
            value = loss(*args, **kwargs)
            values[name] = value.detach()
            weighted = value * self.weights[name]
            total = weighted if total is None else total + weighted
        self.last_values = values
        assert total is not None
        return total

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={weight}" for name, weight in self.weights.items())


def build_loss(name: str | Mapping[str, float], **options: Any) -> nn.Module:
    """Build a loss by name, or a weighted sum from ``{name: weight}``.

    Options (``mode``, ``ignore_index``, ``smooth``...) go to every term; a term that does not
    take an option (``SoftBCEWithLogitsLoss`` has no ``mode``) simply does not receive it.
    """
    if isinstance(name, Mapping):
        terms: dict[str, nn.Module] = {}
        weights: dict[str, float] = {}
        for term, weight in name.items():
            if not isinstance(weight, int | float) or isinstance(weight, bool):
                raise InvalidOptionError(
                    f"the weight of loss {term!r} must be a number, got {weight!r}"
                )
            terms[term] = _build_single(term, options, drop_unknown=True)
            weights[term] = float(weight)
        return WeightedSumLoss(terms, weights)
    return _build_single(name, options, drop_unknown=False)


def _build_single(name: str, options: Mapping[str, Any], drop_unknown: bool) -> nn.Module:
    import inspect

    factory = get_loss_class(name)
    arguments = dict(options)
    if "mode" in arguments and arguments["mode"] not in MODES:
        raise InvalidOptionError(
            f"unknown mode {arguments['mode']!r}; valid modes are {', '.join(map(repr, MODES))}"
        )
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = None
    if parameters is not None and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    ):
        unknown = [key for key in arguments if key not in parameters]
        if unknown and drop_unknown:
            for key in unknown:
                arguments.pop(key)
        elif unknown:
            raise InvalidOptionError(
                f"loss {name!r} takes no option(s) {', '.join(map(repr, unknown))}; valid "
                f"options: {', '.join(parameters)}"
            )
    return factory(**arguments)
