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

import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

import torch
from torch import nn

from segcore import MODES
from segcore.errors import InvalidOptionError, UnknownOptionError, did_you_mean
from segcore.registry import get_registry
from segcore.specs import load

#: Example shown by the errors about the ``{name: weight}`` form.
_MAPPING_EXAMPLE = "{'dice': 1.0, 'focal': 0.5}"


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


def check_loss_weight(term: str, weight: Any) -> float:
    """The weight of a term of a combined loss as a float: a finite number >= 0.

    0 switches a term off (it is still computed and logged); a negative weight would make
    training maximise the term, so it is refused, as are NaN, infinities and booleans.
    """
    if isinstance(weight, bool) or not isinstance(weight, Real):
        raise InvalidOptionError(
            f"the weight of loss {term!r} must be a finite number >= 0, got {weight!r} "
            f"({type(weight).__name__}); e.g. {_MAPPING_EXAMPLE}"
        )
    if not math.isfinite(weight):
        raise InvalidOptionError(
            f"the weight of loss {term!r} must be a finite number >= 0, got {weight!r}"
        )
    if weight < 0:
        raise InvalidOptionError(
            f"the weight of loss {term!r} must be a finite number >= 0, got {weight!r}: a "
            "negative weight makes training maximise the term; use 0 to switch it off"
        )
    return float(weight)


class WeightedSumLoss(nn.Module):
    """A weighted sum of losses; ``forward`` returns the total.

    ``last_values`` holds each term's last (unweighted, detached) value for logging.

    Args:
        losses: the terms by name (at least one).
        weights: one finite weight >= 0 per term, under the same names.
    """

    def __init__(self, losses: Mapping[str, nn.Module], weights: Mapping[str, float]) -> None:
        super().__init__()
        if not losses:
            raise InvalidOptionError(
                f"a combined loss needs at least one term, e.g. {_MAPPING_EXAMPLE}"
            )
        if set(losses) != set(weights):
            raise InvalidOptionError(
                f"a combined loss needs one weight per term: terms {sorted(losses)}, weights "
                f"for {sorted(weights)}"
            )
        self.losses = nn.ModuleDict(dict(losses))
        self.weights = {name: check_loss_weight(name, weights[name]) for name in losses}
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

    With one name, every option must be an argument of that loss. With a mapping, each option
    goes to the terms that take it (``SoftBCEWithLogitsLoss`` has no ``mode``, so it does not
    receive it), and an option that no term takes is an error. Weights are finite numbers
    >= 0; the terms must return scalars (no ``reduction="none"``).

    Raises:
        UnknownNameError: a loss name that no installed plugin provides.
        UnknownOptionError: an option the loss (or, in a sum, every term) does not take.
        InvalidOptionError: a bad mode, weight or option value; an empty mapping.
    """
    _check_mode(options)
    if isinstance(name, Mapping):
        return _build_weighted_sum(name, options)
    if not isinstance(name, str):
        raise InvalidOptionError(
            f"build_loss takes a loss name (see segcore.list_losses()) or a {{name: weight}} "
            f"mapping such as {_MAPPING_EXAMPLE}, got {name!r}"
        )
    factory = get_loss_class(name)
    accepted = _accepted_options(factory)
    unknown = [key for key in options if accepted is not None and key not in accepted]
    if unknown:
        raise UnknownOptionError(
            f"loss {name!r} takes no option {', '.join(map(repr, unknown))}."
            f"{did_you_mean(unknown[0], accepted or ())} Valid options: "
            f"{', '.join(accepted or ())}"
        )
    return factory(**options)


def _build_weighted_sum(terms: Mapping[Any, Any], options: Mapping[str, Any]) -> nn.Module:
    if not terms:
        raise InvalidOptionError(
            f"build_loss got an empty mapping: give at least one {{name: weight}} term, e.g. "
            f"{_MAPPING_EXAMPLE}; installed losses: {', '.join(list_losses())}"
        )
    if options.get("reduction", "mean") in ("none", None):
        raise InvalidOptionError(
            f"reduction={options['reduction']!r} makes a term return one loss per element, "
            "which a weighted sum cannot add to the scalar terms; use 'mean' or 'sum'"
        )
    weights = {term: check_loss_weight(term, weight) for term, weight in terms.items()}
    factories = {term: get_loss_class(term) for term in terms}
    accepted = {term: _accepted_options(factory) for term, factory in factories.items()}
    valid: list[str] = []  # the options of every term, in signature order, once each
    for names in accepted.values():
        for key in names or ():
            if key not in valid:
                valid.append(key)
    unknown = [
        key for key in options
        if all(names is not None and key not in names for names in accepted.values())
    ]
    if unknown:
        raise UnknownOptionError(
            f"no term of the combined loss ({', '.join(map(repr, terms))}) takes the option "
            f"{', '.join(map(repr, unknown))}.{did_you_mean(unknown[0], valid)} Valid options: "
            f"{', '.join(valid)}"
        )
    built = {
        term: factory(**{
            key: value for key, value in options.items()
            if accepted[term] is None or key in accepted[term]
        })
        for term, factory in factories.items()
    }
    return WeightedSumLoss(built, weights)


def _check_mode(options: Mapping[str, Any]) -> None:
    if "mode" not in options:
        return
    mode = options["mode"]
    if not isinstance(mode, str) or mode not in MODES:
        hint = did_you_mean(mode, MODES) if isinstance(mode, str) else ""
        raise InvalidOptionError(
            f"unknown mode {mode!r}; valid modes are {', '.join(map(repr, MODES))} "
            f"(segcore.MODES).{hint}"
        )


def _accepted_options(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments ``factory`` takes, in order; ``None`` when it takes any
    (``**kwargs``) or has no readable signature."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in keyword]
