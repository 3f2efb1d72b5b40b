"""Streaming evaluation: add up confusion counts over batches (and processes), score at the end.

Averaging per-batch scores is wrong whenever batches differ in size or class content; the
right dataset score comes from the counts of the whole dataset. ``MetricAccumulator`` keeps
those counts::

    accumulator = MetricAccumulator(mode="multiclass", num_classes=21, ignore_index=255)
    for images, masks in loader:
        accumulator.update(model(images).argmax(1), masks)
    miou = accumulator.compute("iou_score", reduction="macro")
    scores = accumulator.compute(["iou_score", "f1_score"], reduction="micro-imagewise")
    accumulator.reset()
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from segcore import BINARY_MODE, MULTICLASS_MODE
from segcore.errors import (
    InvalidOptionError,
    InvalidTargetError,
    UnknownNameError,
    UnknownOptionError,
    did_you_mean,
)
from segcore_metrics.functional import (
    METRICS,
    Stats,
    Threshold,
    check_stats_options,
    get_stats,
)

__all__ = ["MetricAccumulator"]

_IMAGEWISE = ("micro-imagewise", "macro-imagewise", "weighted-imagewise", "none", None)


class MetricAccumulator:
    """Adds up ``get_stats`` counts over batches; computes any metric with any reduction.

    Args:
        mode, ignore_index, threshold, num_classes: passed to ``get_stats`` on every update.
        per_image: keep the counts of every image (needed by the ``*-imagewise`` reductions and
            ``reduction=None``). Costs ``4 * C * 8`` bytes per image (21 classes: 672 bytes,
            so 0.7 GB for a million images). With ``False`` only the per-class totals are kept
            (``4 * C * 8`` bytes in all) and ``micro``/``macro``/``weighted`` remain available.
        distributed: when ``torch.distributed`` is initialized with more than one process,
            ``compute()`` and ``stats()`` merge the counts of all processes (a collective call:
            every process must make it). ``False`` keeps each process on its own counts.
        process_group: the group to merge over (default: the whole world).

    Example::

        accumulator = MetricAccumulator("binary", threshold=0.5)
        for images, masks in loader:
            accumulator.update(model(images).sigmoid(), masks)
        accumulator.compute("f1_score", reduction="micro")
    """

    def __init__(
        self,
        mode: str,
        ignore_index: int | None = None,
        threshold: Threshold | None = None,
        num_classes: int | None = None,
        per_image: bool = True,
        distributed: bool = True,
        process_group: Any = None,
    ) -> None:
        if mode == MULTICLASS_MODE and num_classes is None:
            raise InvalidOptionError(
                "MetricAccumulator(mode='multiclass') needs num_classes, the number of classes"
            )
        check_stats_options(mode, ignore_index, threshold, num_classes)
        for flag, value in (("per_image", per_image), ("distributed", distributed)):
            if not isinstance(value, bool):
                raise InvalidOptionError(f"{flag} must be True or False, got {value!r}")
        self.mode = mode
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.num_classes = num_classes
        self.per_image = per_image
        self.distributed = distributed
        self.process_group = process_group
        self.reset()

    def reset(self) -> None:
        """Forget every count (start of a new evaluation)."""
        self._parts: list[Tensor] = []  # (K, 4, C) long tensors; K images, or 1 row of totals
        self._images = 0

    @property
    def num_images(self) -> int:
        """Images seen by this process since the last ``reset``."""
        return self._images

    def update(self, output: Tensor, target: Tensor) -> Stats:
        """Count one batch (same arguments as ``get_stats``); returns its ``(tp, fp, fn, tn)``."""
        stats = get_stats(
            output, target, self.mode, ignore_index=self.ignore_index,
            threshold=self.threshold, num_classes=self.num_classes,
        )
        batch = torch.stack(stats, dim=1)  # (N, 4, C)
        if self._parts and self._parts[0].shape[-1] != batch.shape[-1]:
            raise InvalidTargetError(
                f"this batch has {batch.shape[-1]} classes but earlier ones had "
                f"{self._parts[0].shape[-1]}; call reset() to start a new evaluation"
            )
        if not self.per_image:
            batch = batch.sum(0, keepdim=True)
            if self._parts:
                batch = batch + self._parts[0].to(batch.device)
            self._parts = [batch]
        else:
            self._parts.append(batch)
        self._images += int(output.shape[0])
        return stats

    def stats(self) -> Stats:
        """``(tp, fp, fn, tn)`` so far, merged over processes: (images, C) each, or (1, C)
        totals with ``per_image=False``."""
        local = self._local()
        if self._should_sync():
            local = _merge_across_processes(local, self.per_image, self.process_group)
        if not self.per_image and local.shape[0] == 0:
            local = torch.zeros(1, *local.shape[1:], dtype=torch.long, device=local.device)
        return local[:, 0], local[:, 1], local[:, 2], local[:, 3]

    def compute(
        self,
        metric: str | Callable[..., Tensor] | Sequence[str] = "iou_score",
        reduction: str | None = "micro",
        class_weights: Sequence[float] | Tensor | None = None,
        zero_division: str | float = 1.0,
        **options: Any,
    ) -> Tensor | dict[str, Tensor]:
        """Score everything seen so far.

        Args:
            metric: a metric name (``"iou_score"``), a score function taking
                ``(tp, fp, fn, tn, reduction=..., class_weights=..., zero_division=...)``, or a
                list of names (one merge across processes for all of them; returns a dict).
            reduction, class_weights, zero_division: as for the score functions. The default
                reduction here is ``"micro"``.
            options: extra arguments of the metric (``beta`` for ``fbeta_score``); with a list
                of metrics, each receives the options it takes.
        """
        if not self.per_image and reduction in _IMAGEWISE:
            raise InvalidOptionError(
                f"reduction {reduction!r} needs per-image counts: create the accumulator with "
                "per_image=True, or use 'micro', 'macro' or 'weighted'"
            )
        names = [metric] if isinstance(metric, str) or callable(metric) else list(metric)
        functions = [_metric_function(name) for name in names]
        accepted = [_accepted_options(function, options) for function in functions]
        unused = sorted(set(options).difference(*accepted))
        if unused:
            raise UnknownOptionError(
                f"no requested metric takes the option(s) {', '.join(unused)} (beta is an "
                f"option of fbeta_score).{did_you_mean(unused[0], ['beta'])}"
            )
        tp, fp, fn, tn = self.stats()
        scores = {
            getattr(function, "__name__", str(name)): function(
                tp, fp, fn, tn, reduction=reduction, class_weights=class_weights,
                zero_division=zero_division, **{key: options[key] for key in keys},
            )
            for name, function, keys in zip(names, functions, accepted)
        }
        if isinstance(metric, str) or callable(metric):
            return next(iter(scores.values()))
        return scores

    def _local(self) -> Tensor:
        if not self._parts:
            classes = {BINARY_MODE: 1, MULTICLASS_MODE: self.num_classes}.get(self.mode, 0)
            return torch.zeros(0, 4, classes or 0, dtype=torch.long)
        if len(self._parts) > 1:
            self._parts = [torch.cat([part.to(self._parts[0].device) for part in self._parts])]
        return self._parts[0]

    def _should_sync(self) -> bool:
        if not self.distributed:
            return False
        distributed = torch.distributed
        return (
            distributed.is_available()
            and distributed.is_initialized()
            and distributed.get_world_size(self.process_group) > 1
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mode={self.mode!r}, num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index}, threshold={self.threshold}, "
            f"per_image={self.per_image}, images={self._images})"
        )


def _metric_function(metric: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise UnknownNameError(
            f"unknown metric {metric!r}; valid metrics are {', '.join(METRICS)}."
            + did_you_mean(metric, METRICS)
        )
    return METRICS[metric]


def _accepted_options(function: Callable[..., Tensor], options: dict[str, Any]) -> set[str]:
    """The keys of ``options`` that ``function`` takes (all of them for ``**kwargs``)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return set(options)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return set(options)
    return {key for key in options if key in parameters}


def _merge_across_processes(local: Tensor, per_image: bool, group: Any) -> Tensor:
    """Concatenate per-image counts (rank order), or sum totals, over the processes."""
    distributed = torch.distributed
    world = distributed.get_world_size(group)
    device = local.device
    if distributed.get_backend(group) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    # Processes may hold different numbers of images, and one without any update does not
    # know the number of classes (multilabel): exchange both first.
    header = torch.tensor([local.shape[0], local.shape[2]], dtype=torch.long, device=device)
    headers = [torch.empty_like(header) for _ in range(world)]
    distributed.all_gather(headers, header, group=group)
    rows = [int(h[0]) for h in headers]
    classes = {int(h[1]) for h, count in zip(headers, rows) if count > 0}
    if len(classes) > 1:
        raise InvalidTargetError(
            f"the processes counted different numbers of classes {sorted(classes)}; every "
            "process must evaluate the same classes"
        )
    num_classes = classes.pop() if classes else local.shape[2]
    padded = torch.zeros(max(rows), 4, num_classes, dtype=torch.long, device=device)
    if local.shape[0]:
        padded[: local.shape[0]] = local.to(device)
    if not per_image:
        distributed.all_reduce(padded, op=distributed.ReduceOp.SUM, group=group)
        return padded.to(local.device)
    gathered = [torch.empty_like(padded) for _ in range(world)]
    distributed.all_gather(gathered, padded, group=group)
    return torch.cat([part[:count] for part, count in zip(gathered, rows)]).to(local.device)
