"""Catalogue rows: metric functions, ``get_stats`` and ``MetricAccumulator`` misused.

Item 7.15 is the arguments of the score functions (beta, reduction, zero_division,
class_weights, counts); the ``get_stats`` and accumulator rows pin the inputs they refuse.
Every row needs ``segcore_metrics``; it is imported inside the calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from catalogue import Case, Context

from segcore.errors import (
    InvalidOptionError,
    InvalidTargetError,
    UnknownNameError,
    UnknownOptionError,
)

REQUIRES = ("segcore_metrics",)

# Two images x three classes.
TP = [[2, 0, 1], [0, 3, 0]]
FP = [[1, 0, 2], [1, 0, 0]]
FN = [[0, 1, 1], [2, 0, 0]]
TN = [[5, 7, 4], [5, 5, 8]]


def _score(name: str, *, stats: tuple[Any, ...] | None = None, **options: Any
           ) -> Callable[[Context], Any]:
    """A call of the score function ``name`` on the counts above (or on ``stats``)."""

    def call(context: Context) -> Any:
        import segcore_metrics
        import torch

        counts = stats if stats is not None else tuple(
            torch.tensor(values) for values in (TP, FP, FN, TN)
        )
        return getattr(segcore_metrics, name)(*counts, **options)

    return call


def _stats(output: Callable[[], Any], target: Callable[[], Any], mode: Any, **options: Any
           ) -> Callable[[Context], Any]:
    """A call of ``get_stats(output(), target(), mode, **options)``."""

    def call(context: Context) -> Any:
        import segcore_metrics

        return segcore_metrics.get_stats(output(), target(), mode, **options)

    return call


def _tensor(*shape: int, fill: float = 0, dtype: str = "long") -> Callable[[], Any]:
    def make() -> Any:
        import torch

        return torch.full(shape, fill, dtype=getattr(torch, dtype))

    return make


def _meta_tensor(*shape: int) -> Callable[[], Any]:
    """A long tensor on the "meta" device (any device other than the output's)."""

    def make() -> Any:
        import torch

        return torch.zeros(shape, dtype=torch.long, device="meta")

    return make


def _rand(*shape: int) -> Callable[[], Any]:
    def make() -> Any:
        import torch

        return torch.rand(*shape)

    return make


def _accumulator(*, update: bool = False, **options: Any) -> Callable[..., Any]:
    """A created (and, with ``update``, once updated) binary accumulator; ``compute`` options
    are given when the row calls it."""

    def create() -> Any:
        import segcore_metrics
        import torch

        accumulator = segcore_metrics.MetricAccumulator(**options)
        if update:
            ones = torch.ones(1, 1, 4, dtype=torch.long)
            accumulator.update(ones, ones)
        return accumulator

    return create


def _compute(metric: Any, accumulator_options: dict[str, Any], **options: Any
             ) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        return _accumulator(update=True, **accumulator_options)().compute(metric, **options)

    return call


def _mismatched_updates(context: Context) -> Any:
    import segcore_metrics
    import torch

    accumulator = segcore_metrics.MetricAccumulator("multilabel", threshold=0.5)
    accumulator.update(torch.rand(1, 3, 4), torch.ones(1, 3, 4, dtype=torch.long))
    return accumulator.update(torch.rand(1, 2, 4), torch.ones(1, 2, 4, dtype=torch.long))


def _get_metric(name: str) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        import segcore

        return segcore.get_metric(name)

    return call


def row(id: str, description: str, call: Callable[[Context], Any], error: type[BaseException],
        words: tuple[str, ...], item: str = "metrics") -> Case:
    """A row; its id says "metric" (``-k metric`` selects the rows of this module)."""
    return Case(id=id if "metric" in id else f"metric-{id}", item=item,
                description=description, call=call, error=error, words=words,
                requires=REQUIRES)


def _counts(*shapes: tuple[int, ...]) -> tuple[Any, ...]:
    import torch

    return tuple(torch.zeros(shape, dtype=torch.long) for shape in shapes)


def _score_on(name: str, make_stats: Callable[[], tuple[Any, ...]], **options: Any
              ) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        return _score(name, stats=make_stats(), **options)(context)

    return call


def _undefined_metric_warning() -> type[Warning]:
    """``UndefinedMetricWarning``; without segcore_metrics (whose rows are skipped) a
    stand-in, so that this module still loads."""
    try:
        from segcore_metrics.functional import UndefinedMetricWarning
    except ImportError:  # pragma: no cover - only without segcore-metrics
        return type("UndefinedMetricWarning", (UserWarning,), {})
    return UndefinedMetricWarning


CASES: list[Case] = [
    # -- the score functions (7.15) ---------------------------------------------------------
    row("fbeta-negative-beta", "fbeta_score(beta=-1)", _score("fbeta_score", beta=-1),
        InvalidOptionError, ("beta must be a finite number > 0", "got -1"), item="7.15"),
    row("fbeta-zero-beta", "fbeta_score(beta=0)", _score("fbeta_score", beta=0),
        InvalidOptionError, ("beta must be a finite number > 0", "precision()"), item="7.15"),
    row("fbeta-nan-beta", "fbeta_score(beta=nan)", _score("fbeta_score", beta=math.nan),
        InvalidOptionError, ("beta must be a finite number > 0", "nan"), item="7.15"),
    row("fbeta-inf-beta", "fbeta_score(beta=inf)", _score("fbeta_score", beta=math.inf),
        InvalidOptionError, ("beta must be a finite number > 0", "inf"), item="7.15"),
    row("fbeta-string-beta", "fbeta_score(beta='2')", _score("fbeta_score", beta="2"),
        InvalidOptionError, ("beta must be a finite number", "'2'"), item="7.15"),
    row("fbeta-bool-beta", "fbeta_score(beta=True)", _score("fbeta_score", beta=True),
        InvalidOptionError, ("beta must be a finite number", "true"), item="7.15"),
    row("unknown-reduction", "iou_score(reduction='mean')",
        _score("iou_score", reduction="mean"), InvalidOptionError,
        ("unknown reduction 'mean'", "'micro'", "'macro-imagewise'", "none"), item="7.15"),
    row("misspelled-reduction", "iou_score(reduction='macro_imagewise')",
        _score("iou_score", reduction="macro_imagewise"), InvalidOptionError,
        ("did you mean 'macro-imagewise'",), item="7.15"),
    row("reduction-list", "iou_score(reduction=['macro'])",
        _score("iou_score", reduction=["macro"]), InvalidOptionError,
        ("unknown reduction ['macro']", "valid values"), item="7.15"),
    row("zero-division-string", "zero_division='zero'",
        _score("iou_score", zero_division="zero"), InvalidOptionError,
        ("zero_division must be a finite number", "'warn'"), item="7.15"),
    row("zero-division-misspelled-warn", "zero_division='wran'",
        _score("iou_score", zero_division="wran"), InvalidOptionError,
        ("did you mean 'warn'",), item="7.15"),
    row("zero-division-nan", "zero_division=nan", _score("iou_score", zero_division=math.nan),
        InvalidOptionError, ("zero_division must be a finite number", "nan"), item="7.15"),
    row("zero-division-inf", "zero_division=inf", _score("iou_score", zero_division=math.inf),
        InvalidOptionError, ("zero_division must be a finite number", "inf"), item="7.15"),
    row("zero-division-bool", "zero_division=True", _score("iou_score", zero_division=True),
        InvalidOptionError, ("zero_division must be a finite number", "true"), item="7.15"),
    row("weighted-without-class-weights", "reduction='weighted' without class_weights",
        _score("f1_score", reduction="weighted"), InvalidOptionError,
        ("needs class_weights", "3 values"), item="7.15"),
    row("class-weights-wrong-length", "2 class weights for 3 classes",
        _score("iou_score", reduction="weighted", class_weights=[1.0, 2.0]), InvalidOptionError,
        ("one value per class (3)", "got 2"), item="7.15"),
    row("class-weights-negative", "a negative class weight",
        _score("iou_score", reduction="weighted", class_weights=[1.0, -1.0, 1.0]),
        InvalidOptionError, ("finite and >= 0",), item="7.15"),
    row("class-weights-nan", "a NaN class weight",
        _score("iou_score", reduction="weighted-imagewise", class_weights=[1.0, math.nan, 1.0]),
        InvalidOptionError, ("finite and >= 0",), item="7.15"),
    row("class-weights-all-zero", "class weights all 0",
        _score("iou_score", reduction="weighted", class_weights=[0, 0, 0]), InvalidOptionError,
        ("must not all be zero",), item="7.15"),
    row("class-weights-strings", "class weights of strings",
        _score("iou_score", reduction="weighted", class_weights=["a", "b", "c"]),
        InvalidOptionError, ("class_weights must be a list or tensor of 3 numbers",),
        item="7.15"),
    row("class-weights-ignored", "class_weights with reduction='macro'",
        _score("iou_score", reduction="macro", class_weights=[1.0, 2.0, 1.0]),
        UserWarning, ("only used by the weighted reductions",), item="7.15"),
    row("undefined-score-warns", "zero_division='warn' on a 0/0 score",
        _score("iou_score", zero_division="warn"), _undefined_metric_warning(),
        ("0/0", "zero_division=<value>"), item="7.15"),
    row("stats-shape-mismatch", "tp (2, 3) but fp (1, 3)",
        _score_on("iou_score", lambda: _counts((2, 3), (1, 3), (2, 3), (2, 3))),
        InvalidTargetError, ("same shape", "(2, 3), (1, 3)"), item="7.15"),
    row("stats-one-dimensional-macro", "tp of shape (3,) with reduction='macro'",
        _score_on("iou_score", lambda: _counts((3,), (3,), (3,), (3,)), reduction="macro"),
        InvalidTargetError, ("shape (n, c)", "(3,)"), item="7.15"),
    row("stats-none", "tn=None",
        _score_on("iou_score", lambda: (*_counts((2, 3), (2, 3), (2, 3)), None)),
        InvalidTargetError, ("tn must be a tensor of counts", "none"), item="7.15"),
    row("stats-strings", "counts given as a string",
        _score_on("accuracy", lambda: ("tp", *_counts((2, 3), (2, 3), (2, 3)))),
        InvalidTargetError, ("tp must be a tensor of counts", "'tp'"), item="7.15"),

    # -- get_stats ------------------------------------------------------------------------
    row("get-stats-unknown-mode", "mode='multi-class'",
        _stats(_tensor(2, 4), _tensor(2, 4), "multi-class", num_classes=3), InvalidOptionError,
        ("unknown mode 'multi-class'", "'binary', 'multiclass', 'multilabel'",
         "did you mean 'multiclass'")),
    row("get-stats-mode-none", "mode=None", _stats(_tensor(2, 4), _tensor(2, 4), None),
        InvalidOptionError, ("unknown mode none",)),
    row("get-stats-multiclass-without-num-classes", "multiclass without num_classes",
        _stats(_tensor(2, 4), _tensor(2, 4), "multiclass"), InvalidOptionError,
        ("needs num_classes",)),
    row("get-stats-zero-classes", "num_classes=0",
        _stats(_tensor(2, 4), _tensor(2, 4), "multiclass", num_classes=0), InvalidOptionError,
        ("num_classes must be >= 1",)),
    row("get-stats-float-num-classes", "num_classes=3.0",
        _stats(_tensor(2, 4), _tensor(2, 4), "multiclass", num_classes=3.0), InvalidOptionError,
        ("num_classes must be an int", "3.0")),
    row("get-stats-bool-num-classes-binary", "num_classes=True in binary mode",
        _stats(_rand(2, 1, 4), _tensor(2, 1, 4), "binary", threshold=0.5, num_classes=True),
        InvalidOptionError, ("num_classes must be an int", "true")),
    row("get-stats-threshold-in-multiclass", "threshold in multiclass mode",
        _stats(_tensor(2, 4), _tensor(2, 4), "multiclass", num_classes=3, threshold=0.5),
        InvalidOptionError, ("not used in 'multiclass' mode", "argmax")),
    row("get-stats-ignore-index-is-a-class", "ignore_index=0 with 3 classes",
        _stats(_tensor(2, 4), _tensor(2, 4), "multiclass", num_classes=3, ignore_index=0),
        InvalidOptionError, ("valid class index", "e.g. -1 or 255")),
    row("get-stats-ignore-index-float", "ignore_index=255.0",
        _stats(_tensor(2, 4), _tensor(2, 4), "multiclass", num_classes=3, ignore_index=255.0),
        InvalidOptionError, ("ignore_index must be an int", "255.0")),
    row("get-stats-ignore-index-binary-label", "ignore_index=1 in binary mode",
        _stats(_rand(2, 1, 4), _tensor(2, 1, 4), "binary", threshold=0.5, ignore_index=1),
        InvalidOptionError, ("valid binary label",)),
    row("get-stats-float-multiclass-output", "float scores in multiclass mode",
        _stats(_rand(2, 4), _tensor(2, 4), "multiclass", num_classes=3), InvalidTargetError,
        ("integer (torch.long) tensor of class indices", "argmax(dim=1)")),
    row("get-stats-per-class-scores-output", "(N, C, ...) scores in multiclass mode",
        _stats(_rand(2, 3, 4), _tensor(2, 4), "multiclass", num_classes=3), InvalidTargetError,
        ("argmax(dim=1)",)),
    row("get-stats-float-multiclass-target", "float targets in multiclass mode",
        _stats(_tensor(2, 4), _tensor(2, 4, dtype="float"), "multiclass", num_classes=3),
        InvalidTargetError, ("integer tensor (torch.long)", "class indices")),
    row("get-stats-target-out-of-range", "class 3 of 3 in the target",
        _stats(_tensor(2, 4), _tensor(2, 4, fill=3), "multiclass", num_classes=3),
        InvalidTargetError, ("class indices in [0, 3)", "ignore_index")),
    row("get-stats-target-with-channel", "multiclass target (N, 1, ...)",
        _stats(_tensor(2, 4), _tensor(2, 1, 4), "multiclass", num_classes=3),
        InvalidTargetError, ("squeeze(1)",)),
    row("get-stats-float-output-without-threshold", "binary scores without threshold",
        _stats(_rand(2, 1, 4), _tensor(2, 1, 4), "binary"), InvalidOptionError,
        ("pass threshold", "0.5 for probabilities")),
    row("get-stats-string-threshold", "threshold='0.5'",
        _stats(_rand(2, 1, 4), _tensor(2, 1, 4), "binary", threshold="0.5"),
        InvalidOptionError, ("threshold must be a finite number", "'0.5'")),
    row("get-stats-nan-threshold", "threshold=nan",
        _stats(_rand(2, 1, 4), _tensor(2, 1, 4), "binary", threshold=math.nan),
        InvalidOptionError, ("threshold must be a finite number", "nan")),
    row("get-stats-threshold-wrong-length", "2 thresholds for 3 classes",
        _stats(_rand(2, 3, 4), _tensor(2, 3, 4), "multilabel", threshold=[0.5, 0.5]),
        InvalidOptionError, ("one per class (3)", "2 values")),
    row("get-stats-binary-three-channels", "binary output with 3 channels",
        _stats(_rand(2, 3, 4), _tensor(2, 3, 4), "binary", threshold=0.5), InvalidTargetError,
        ("(n, 1, ...)", "mode='multilabel'")),
    row("get-stats-shape-mismatch", "output (2, 3, 4), target (2, 3, 5)",
        _stats(_rand(2, 3, 4), _tensor(2, 3, 5), "multilabel", threshold=0.5),
        InvalidTargetError, ("same shape", "(2, 3, 4)", "(2, 3, 5)")),
    row("get-stats-binary-target-two", "binary target holding 2",
        _stats(_rand(2, 1, 4), _tensor(2, 1, 4, fill=2), "binary", threshold=0.5),
        InvalidTargetError, ("only 0 and 1", "e.g. 2")),
    row("get-stats-float-binary-target", "float binary target",
        _stats(_rand(2, 1, 4), _rand(2, 1, 4), "binary", threshold=0.5), InvalidTargetError,
        ("integer tensor", "target.long()")),
    row("get-stats-num-classes-mismatch", "num_classes=4 for 3 channels",
        _stats(_rand(2, 3, 4), _tensor(2, 3, 4), "multilabel", threshold=0.5, num_classes=4),
        InvalidOptionError, ("num_classes=4", "3 channel(s)")),
    row("get-stats-target-other-device", "target on another device",
        _stats(_tensor(2, 4), _meta_tensor(2, 4), "multiclass", num_classes=3),
        InvalidTargetError, ("different devices", "target.to(output.device)")),
    row("get-stats-list-output", "a list as output",
        _stats(lambda: [[0, 1]], _tensor(1, 2), "multiclass", num_classes=2),
        InvalidTargetError, ("output must be a torch.tensor", "list")),

    # -- MetricAccumulator and lookup by name ---------------------------------------------
    row("accumulator-without-num-classes", "multiclass accumulator without num_classes",
        lambda context: _accumulator(mode="multiclass")(), InvalidOptionError,
        ("needs num_classes",)),
    row("accumulator-bad-threshold", "accumulator with threshold='high'",
        lambda context: _accumulator(mode="binary", threshold="high")(), InvalidOptionError,
        ("threshold must be a finite number", "'high'")),
    row("accumulator-per-image-string", "per_image='no'",
        lambda context: _accumulator(mode="binary", per_image="no")(), InvalidOptionError,
        ("per_image must be true or false",)),
    row("accumulator-imagewise-without-per-image", "imagewise score of totals only",
        _compute("iou_score", dict(mode="binary", per_image=False),
                 reduction="macro-imagewise"),
        InvalidOptionError, ("per_image=true", "'micro'")),
    row("accumulator-unknown-metric", "compute('iou')",
        _compute("iou", dict(mode="binary")), UnknownNameError,
        ("unknown metric 'iou'", "did you mean 'iou_score'")),
    row("accumulator-misspelled-option", "compute('fbeta_score', betta=2)",
        _compute("fbeta_score", dict(mode="binary"), betta=2.0), UnknownOptionError,
        ("betta", "did you mean 'beta'")),
    row("accumulator-negative-beta", "compute('fbeta_score', beta=-2)",
        _compute("fbeta_score", dict(mode="binary"), beta=-2.0), InvalidOptionError,
        ("beta must be a finite number > 0",), item="7.15"),
    row("accumulator-class-count-changes", "3 classes, then 2",
        _mismatched_updates, InvalidTargetError, ("2 classes", "earlier ones had 3", "reset()")),
    row("get-metric-unknown", "segcore.get_metric('iou')", _get_metric("iou"),
        UnknownNameError, ("unknown metric 'iou'", "did you mean 'iou_score'")),
]
