"""Evaluate a model on a dataset: the confusion matrix and per-class IoU, F1, precision, recall.

* ``confusion_matrix(predictions, targets, classes)``: ``(K, K)`` pixel counts, rows the
  true class, columns the predicted one, computed on the tensors' device;
* ``multilabel_confusion(predictions, targets)``: ``(K, 2, 2)``, one binary matrix per label;
* ``scores_from_confusion(confusion)``: the scores as a JSON-ready dict;
* ``evaluate(model, dataset, classes=...)``: runs the model over a dataset (or a loader) and
  returns an ``EvaluationResult`` with ``.table()`` for people and ``.to_json()`` for machines.

Undefined scores (0/0) are ``None`` (``"n/a"`` in the table), never NaN:

* IoU and F1 of a class are ``None`` only when the class is absent from both the truth and
  the prediction (nothing to score); a class predicted but absent from the truth scores 0;
* precision is ``None`` when the class is never predicted, recall when it is absent from the
  truth;
* the means are taken over the classes whose score is defined.

Example::

    model = segcore.from_pretrained("runs/best")
    report = scan("data", classes=4)
    normalization = resolve_normalization()       # as in training
    val = report.dataset("val", transform=build_eval_transform(normalization))
    result = evaluate(model, val, classes=4, class_names=report.class_names)
    print(result.table())
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs
import torch
from torch import nn

from segcore.errors import InvalidOptionError, InvalidTargetError

#: The probability from which a multi-label (or single-logit binary) pixel is positive.
THRESHOLD = 0.5
#: The score names, in table order.
SCORES = ("iou", "f1", "precision", "recall")
_LISTED_VALUES = 10


# -- confusion matrices ------------------------------------------------------------------------
def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """Count pixels per (true class, predicted class): a ``(K, K)`` int64 tensor.

    Args:
        predictions: ``(N, H, W)`` (any shape) integer class indices, e.g.
            ``logits.argmax(1)``.
        targets: integer class indices of the same shape.
        classes: ``K``, the number of classes.
        ignore_index: a target value whose pixels are left out.

    ``confusion[t, p]`` counts the pixels of true class ``t`` predicted as ``p``; the result
    is on the inputs' device (one ``bincount``). Raises ``InvalidTargetError`` naming the
    values when a target or prediction is not a class index (or ``ignore_index``), and for
    tensors of different shapes or devices, or floating-point types.

    Example::

        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), classes=2)
        tensor([[1, 1],
                [0, 1]])
    """
    _check_classes(classes, minimum=1)
    _check_pair(predictions, targets, "confusion_matrix")
    targets = targets.reshape(-1)
    predictions = predictions.reshape(-1)
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise InvalidOptionError(f"ignore_index must be an int or None, got {ignore_index!r}")
        keep = targets != ignore_index
        targets, predictions = targets[keep], predictions[keep]
    targets = targets.long()
    predictions = predictions.long()
    bad = (targets < 0) | (targets >= classes) | (predictions < 0) | (predictions >= classes)
    if bool(bad.any()):
        _raise_out_of_range(targets, predictions, classes, ignore_index)
    counts = torch.bincount(targets * classes + predictions, minlength=classes * classes)
    return counts.reshape(classes, classes)


def multilabel_confusion(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """One binary confusion matrix per label: ``(K, 2, 2)`` int64, ``[[tn, fp], [fn, tp]]``.

    Args:
        predictions: ``(N, K, H, W)`` 0/1 (or bool) per label.
        targets: 0/1 of the same shape (float 0/1, as multi-label datasets give, is accepted).

    Example: ``multilabel_confusion(probabilities >= 0.5, masks)[k, 1, 1]`` is label ``k``'s
    true positives.
    """
    for name, tensor in (("predictions", predictions), ("targets", targets)):
        if not isinstance(tensor, torch.Tensor):
            raise InvalidTargetError(
                f"multilabel_confusion: {name} must be a torch.Tensor, got "
                f"{type(tensor).__name__}")
        if tensor.dim() < 2:
            raise InvalidTargetError(
                f"multilabel_confusion: {name} must be (N, K, ...) with the labels on axis 1, "
                f"got shape {tuple(tensor.shape)}")
    if predictions.shape != targets.shape:
        raise InvalidTargetError(
            f"multilabel_confusion: predictions {tuple(predictions.shape)} and targets "
            f"{tuple(targets.shape)} must have the same shape")
    labels = targets.shape[1]
    truth = targets.transpose(0, 1).reshape(labels, -1)
    guess = predictions.transpose(0, 1).reshape(labels, -1)
    for name, values in (("targets", truth), ("predictions", guess)):
        bad = (values != 0) & (values != 1)
        if bool(bad.any()):
            listed = _listed(values[bad])
            raise InvalidTargetError(
                f"multilabel_confusion: {name} must be 0/1 per label, found {listed}; "
                "threshold the probabilities (>= 0.5) first")
    truth = truth.long()
    guess = guess.long()
    offsets = torch.arange(labels, device=truth.device).unsqueeze(1) * 4
    counts = torch.bincount((offsets + truth * 2 + guess).reshape(-1), minlength=labels * 4)
    return counts.reshape(labels, 2, 2)


def _check_classes(classes: Any, minimum: int) -> None:
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < minimum:
        raise InvalidOptionError(f"classes must be an int >= {minimum}, got {classes!r}")


def _check_pair(predictions: Any, targets: Any, where: str) -> None:
    for name, tensor in (("predictions", predictions), ("targets", targets)):
        if not isinstance(tensor, torch.Tensor):
            raise InvalidTargetError(
                f"{where}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.is_floating_point() or tensor.is_complex():
            hint = " (take logits.argmax(1))" if name == "predictions" else ""
            raise InvalidTargetError(
                f"{where}: {name} must hold integer class indices, got {tensor.dtype}{hint}")
    if predictions.shape != targets.shape:
        raise InvalidTargetError(
            f"{where}: predictions {tuple(predictions.shape)} and targets "
            f"{tuple(targets.shape)} must have the same shape (N, H, W)")
    if predictions.device != targets.device:
        raise InvalidTargetError(
            f"{where}: predictions and targets are on different devices ({predictions.device} "
            f"and {targets.device}); move one with .to()")


def _listed(values: torch.Tensor) -> str:
    unique = torch.unique(values).cpu().tolist()
    text = ", ".join(str(v) for v in unique[:_LISTED_VALUES])
    return text + (f", ... ({len(unique)} values)" if len(unique) > _LISTED_VALUES else "")


def _raise_out_of_range(targets: torch.Tensor, predictions: torch.Tensor, classes: int,
                        ignore_index: int | None) -> None:
    for name, values in (("targets", targets), ("predictions", predictions)):
        bad = values[(values < 0) | (values >= classes)]
        if not bad.numel():
            continue
        if name == "predictions":
            fix = "the predictions must be class indices of the same classes as the targets"
        elif ignore_index is None:
            fix = (f"pass classes={int(bad.max()) + 1} if these are classes, or "
                   "ignore_index=<value> to leave those pixels out")
        else:
            fix = f"only ignore_index={ignore_index} may lie outside the classes"
        raise InvalidTargetError(
            f"{name} hold values {_listed(bad)} outside the classes 0..{classes - 1} "
            f"(classes={classes}); {fix}")


# -- scores ------------------------------------------------------------------------------------
def scores_from_confusion(confusion: torch.Tensor) -> dict[str, Any]:
    """Per-class IoU, F1, precision, recall, their means and the pixel accuracy.

    Args:
        confusion: ``(K, K)`` counts (rows truth, columns prediction), or ``(K, 2, 2)``
            binary matrices per label (``multilabel_confusion``: each label's positive
            class is scored).

    Returns a dict of plain Python values (JSON-ready)::

        {"iou": [K floats or None], "f1": [...], "precision": [...], "recall": [...],
         "support": [K ints: true pixels], "predicted": [K ints: predicted pixels],
         "mean_iou": float | None, "mean_f1": ..., "mean_precision": ..., "mean_recall": ...,
         "pixel_accuracy": float | None, "pixels": int}

    ``None`` marks 0/0 (see the module's notes); means are over the classes with a defined
    score. For labels, the pixel accuracy counts every (pixel, label) decision.

    Example: ``scores_from_confusion(torch.eye(3, dtype=torch.long) * 5)["mean_iou"] == 1.0``.
    """
    if not isinstance(confusion, torch.Tensor):
        raise InvalidOptionError(
            f"confusion must be a torch.Tensor of counts, got {type(confusion).__name__}")
    counts = confusion.detach().cpu().to(torch.float64)
    if counts.dim() == 3 and counts.shape[1:] == (2, 2):
        tp, fp, fn = counts[:, 1, 1], counts[:, 0, 1], counts[:, 1, 0]
        correct, pixels = float(counts[:, 0, 0].sum() + tp.sum()), float(counts.sum())
    elif counts.dim() == 2 and counts.shape[0] == counts.shape[1] and counts.shape[0] > 0:
        tp = counts.diagonal()
        fp = counts.sum(dim=0) - tp
        fn = counts.sum(dim=1) - tp
        correct, pixels = float(tp.sum()), float(counts.sum())
    else:
        raise InvalidOptionError(
            f"confusion must be (K, K) counts or (K, 2, 2) per-label counts, got shape "
            f"{tuple(confusion.shape)}")
    if bool((counts < 0).any()) or not bool(torch.isfinite(counts).all()):
        raise InvalidOptionError("confusion must hold pixel counts (finite, >= 0)")
    tp_, fp_, fn_ = tp.tolist(), fp.tolist(), fn.tolist()
    scores: dict[str, Any] = {
        "iou": [_ratio(t, t + p + n) for t, p, n in zip(tp_, fp_, fn_)],
        "f1": [_ratio(2 * t, 2 * t + p + n) for t, p, n in zip(tp_, fp_, fn_)],
        "precision": [_ratio(t, t + p) for t, p in zip(tp_, fp_)],
        "recall": [_ratio(t, t + n) for t, n in zip(tp_, fn_)],
        "support": [int(t + n) for t, n in zip(tp_, fn_)],
        "predicted": [int(t + p) for t, p in zip(tp_, fp_)],
    }
    for name in SCORES:
        scores[f"mean_{name}"] = _mean(scores[name])
    scores["pixel_accuracy"] = _ratio(correct, pixels)
    scores["pixels"] = int(pixels)
    return scores


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


# -- the result --------------------------------------------------------------------------------
@attrs.frozen
class EvaluationResult:
    """What ``evaluate`` found: the confusion matrix and the scores derived from it.

    Attributes:
        confusion: ``(K, K)`` int64 counts on the CPU (rows truth, columns prediction), or
            ``(K, 2, 2)`` per label for a multi-label evaluation.
        class_names: ``K`` names (``"0"``, ``"1"``... when none were given).
        scores: ``scores_from_confusion(confusion)``.
        multilabel: whether the classes are independent labels.
        images: how many images were evaluated.
        ignore_index: the target value that was left out, if any.

    Example: ``result.means["iou"]``, ``result.per_class[1]["f1"]``, ``result.to_json()``.
    """

    confusion: torch.Tensor
    class_names: list[str]
    scores: dict[str, Any]
    multilabel: bool = False
    images: int = 0
    ignore_index: int | None = None

    @property
    def per_class(self) -> list[dict[str, Any]]:
        """One dict per class: index, name, iou, f1, precision, recall, support, predicted."""
        return [
            {"index": k, "name": name,
             **{key: self.scores[key][k] for key in (*SCORES, "support", "predicted")}}
            for k, name in enumerate(self.class_names)
        ]

    @property
    def means(self) -> dict[str, float | None]:
        """The mean of each score over the classes where it is defined."""
        return {name: self.scores[f"mean_{name}"] for name in SCORES}

    @property
    def pixel_accuracy(self) -> float | None:
        """Correct pixels (per label, for multi-label) over all evaluated ones."""
        return self.scores["pixel_accuracy"]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values: what ``to_json`` writes."""
        return {
            "kind": "multilabel" if self.multilabel else "multiclass",
            "images": self.images,
            "pixels": self.scores["pixels"],
            "ignore_index": self.ignore_index,
            "pixel_accuracy": self.pixel_accuracy,
            "means": self.means,
            "classes": self.per_class,
            "confusion": self.confusion.tolist(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The result as JSON; undefined scores are ``null``."""
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """A text table for people: one line per class, then the means and pixel accuracy."""
        label = "label" if self.multilabel else "class"
        names = [f"{k} {name}" if name != str(k) else name
                 for k, name in enumerate(self.class_names)]
        width = max([len(label), len("mean"), *(len(name) for name in names)])
        header = (f"{label:<{width}}  {'IoU':>7}  {'F1':>7}  {'precision':>9}  {'recall':>7}  "
                  f"{'pixels':>10}")
        lines = [header, "-" * len(header)]
        for name, row in zip(names, self.per_class):
            lines.append(f"{name:<{width}}  {_shown(row['iou']):>7}  {_shown(row['f1']):>7}  "
                         f"{_shown(row['precision']):>9}  {_shown(row['recall']):>7}  "
                         f"{row['support']:>10}")
        lines.append("-" * len(header))
        means = self.means
        lines.append(f"{'mean':<{width}}  {_shown(means['iou']):>7}  {_shown(means['f1']):>7}  "
                     f"{_shown(means['precision']):>9}  {_shown(means['recall']):>7}  "
                     f"{self.scores['pixels']:>10}")
        lines.append(f"pixel accuracy {_shown(self.pixel_accuracy)} over {self.images} images "
                     f"({self.scores['pixels']} pixels"
                     + (f", target {self.ignore_index} ignored)" if self.ignore_index is not None
                        else ")"))
        if any(row[key] is None for row in self.per_class for key in SCORES):
            lines.append("n/a: undefined (0/0): a class absent from the truth and the "
                         "prediction;\n     precision: never predicted; recall: never true")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _shown(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


# -- evaluate ----------------------------------------------------------------------------------
def evaluate(
    model: nn.Module,
    dataset_or_loader: Iterable[Any],
    *,
    classes: int,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    ignore_index: int | None = None,
    class_names: Sequence[str] | None = None,
    tile: int | None = None,
) -> EvaluationResult:
    """Run ``model`` over a dataset and score its predictions against the masks.

    Args:
        model: a segmentation model: ``(N, C, H, W)`` -> logits ``(N, K, H, W)`` (a tuple
            output, with the aux head, uses its first element). It is moved to ``device`` and
            put in eval mode for the run; its train/eval mode is restored afterwards.
        dataset_or_loader: a dataset of ``(image (C, H, W), mask)`` pairs, already
            normalised as in training (``report.dataset("val", build_eval_transform(norm))``),
            or a ``DataLoader`` (or any iterable) of batches ``(images, masks)``. Masks are
            ``(H, W)`` class indices (multi-class) or ``(K, H, W)`` 0/1 (multi-label:
            each label is positive where ``sigmoid(logit) >= 0.5``).
        classes: ``K``, the classes (background included) or labels. A model with one
            output channel and ``classes=2`` is a binary model: class 1 where
            ``sigmoid(logit) >= 0.5``.
        batch_size: images per forward pass for a dataset; images of different sizes in a
            batch are run one by one (the model pads any size internally).
        device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        ignore_index: mask value of pixels left out (multi-class only).
        class_names: ``K`` names for the table (default ``"0"``... ``"K-1"``).
        tile: predict with sliding windows of ``tile`` pixels
            (``segcore_train.predict_tiled``), for images too large for one pass.

    Returns an ``EvaluationResult``. Raises ``InvalidOptionError`` for bad options or a model
    whose output does not match ``classes``, and ``InvalidTargetError`` for masks with values
    that are no class.

    Example::

        result = evaluate(model, val_dataset, classes=4, class_names=report.class_names)
        print(result.table()); print(result.means["iou"])
    """
    _check_classes(classes, minimum=1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidOptionError(f"batch_size must be a positive int, got {batch_size!r}")
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise InvalidOptionError(f"tile must be None or a positive int, got {tile!r}")
    names = _class_names(class_names, classes)
    device = resolve_device(device)
    if not isinstance(model, nn.Module):
        raise InvalidOptionError(
            f"model must be a torch.nn.Module (segcore.from_pretrained(...)), got "
            f"{type(model).__name__}")
    was_training = model.training
    model.to(device)
    model.eval()
    confusion: torch.Tensor | None = None
    multilabel: bool | None = None
    images = 0
    try:
        with torch.inference_mode():
            for batch_images, batch_masks in _batches(dataset_or_loader, batch_size):
                batch_images = batch_images.to(device)
                batch_masks = batch_masks.to(device)
                is_multilabel = batch_masks.dim() == 4
                if multilabel is None:
                    multilabel = is_multilabel
                    if multilabel and ignore_index is not None:
                        raise InvalidOptionError(
                            "ignore_index is for multi-class masks; multi-label masks hold "
                            "0/1 per label")
                elif multilabel != is_multilabel:
                    raise InvalidTargetError(
                        "the dataset mixes multi-class (N, H, W) and multi-label (N, K, H, W) "
                        "masks")
                scores, probabilities = _forward(model, batch_images, tile, multilabel)
                counts = _batch_confusion(scores, batch_masks, classes, ignore_index,
                                          multilabel, probabilities)
                confusion = counts if confusion is None else confusion + counts
                images += batch_images.shape[0]
    finally:
        model.train(was_training)
    if confusion is None:
        raise InvalidOptionError(
            "the dataset is empty: nothing to evaluate (check the split and the folder)")
    confusion = confusion.cpu()
    return EvaluationResult(confusion, names, scores_from_confusion(confusion),
                            multilabel=bool(multilabel), images=images,
                            ignore_index=ignore_index)


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; ``InvalidOptionError`` when unknown or unavailable."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise InvalidOptionError(
            f"unknown device {device!r} ({error}); use 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError(
            f"device {device!r} asked for, but CUDA is not available here; use 'cpu'")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidOptionError(f"device {device!r} is not available here; use 'cpu'")
    return resolved


def _class_names(class_names: Sequence[str] | None, classes: int) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(classes)]
    names = [str(name) for name in class_names]
    if len(names) != classes:
        raise InvalidOptionError(
            f"class_names has {len(names)} names for {classes} classes; give one per class")
    return names


def _batches(source: Iterable[Any], batch_size: int
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, masks)`` batches of equal-sized images from a dataset or a loader."""
    if isinstance(source, torch.utils.data.Dataset) and hasattr(source, "__getitem__") \
            and hasattr(source, "__len__"):
        pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        for index in range(len(source)):  # type: ignore[arg-type]
            pending.append(_pair(source[index], index))
            if len(pending) == batch_size:
                yield from _stacked(pending)
                pending = []
        if pending:
            yield from _stacked(pending)
        return
    for number, batch in enumerate(source):
        images, masks = _pair(batch, number)
        if isinstance(images, (list, tuple)):  # a loader that collates to lists
            yield from _stacked(list(zip(images, masks)))
        elif images.dim() == 3:  # an iterable of single samples
            yield from _stacked([(images, masks)])
        else:
            yield images, masks


def _pair(item: Any, index: int) -> tuple[Any, Any]:
    if isinstance(item, dict) and "image" in item and "mask" in item:
        return item["image"], item["mask"]
    if isinstance(item, (list, tuple)) and len(item) == 2:
        return item[0], item[1]
    raise InvalidOptionError(
        f"item {index} of the dataset is a {type(item).__name__}; evaluate needs (image, mask) "
        "pairs (or batches of them)")


def _stacked(pairs: list[tuple[torch.Tensor, torch.Tensor]]
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Stack runs of equal-sized images; images of another size go on their own."""
    group: list[tuple[torch.Tensor, torch.Tensor]] = []
    for image, mask in pairs:
        if group and image.shape != group[0][0].shape:
            yield torch.stack([g[0] for g in group]), torch.stack([g[1] for g in group])
            group = []
        group.append((image, mask))
    if group:
        yield torch.stack([g[0] for g in group]), torch.stack([g[1] for g in group])


def _forward(model: nn.Module, images: torch.Tensor, tile: int | None,
             multilabel: bool) -> tuple[torch.Tensor, bool]:
    """The model's logits, or (``tile``) probabilities; and whether they are probabilities."""
    if tile is not None:
        from segcore_train.predict import predict_tiled

        device = images.device
        probabilities = [
            predict_tiled(model, image.cpu(), tile=tile, device=device,
                          multilabel=True if multilabel else None)
            for image in images]
        return torch.stack(probabilities).to(device), True
    output = model(images)
    if isinstance(output, (tuple, list)):  # (mask, labels) with the aux head
        output = output[0]
    return output, False


def _batch_confusion(logits: torch.Tensor, masks: torch.Tensor, classes: int,
                     ignore_index: int | None, multilabel: bool,
                     probabilities: bool = False) -> torch.Tensor:
    """The batch's confusion; ``logits`` are probabilities already when ``probabilities``."""
    if logits.dim() != 4 or logits.shape[-2:] != masks.shape[-2:]:
        raise InvalidOptionError(
            f"the model's output {tuple(logits.shape)} does not match the masks "
            f"{tuple(masks.shape)}: (N, K, H, W) logits of the masks' size are needed")
    channels = logits.shape[1]
    if multilabel:
        if channels != classes or masks.shape[1] != classes:
            raise InvalidOptionError(
                f"the model outputs {channels} channels and the masks hold {masks.shape[1]} "
                f"labels, but classes={classes}; they must agree")
        predicted = (_probability(logits, probabilities) >= THRESHOLD).long()
        return multilabel_confusion(predicted, masks.round().long())
    if channels == 1 and classes == 2:  # one logit: the binary model
        predicted = (_probability(logits[:, 0], probabilities) >= THRESHOLD).long()
    elif channels == classes:
        predicted = logits.argmax(dim=1)
    else:
        raise InvalidOptionError(
            f"the model outputs {channels} channels but classes={classes}: pass the model's "
            "number of classes (a one-channel binary model goes with classes=2)")
    return confusion_matrix(predicted, masks.long(), classes, ignore_index)


def _probability(scores: torch.Tensor, probabilities: bool) -> torch.Tensor:
    return scores.float() if probabilities else torch.sigmoid(scores.float())
