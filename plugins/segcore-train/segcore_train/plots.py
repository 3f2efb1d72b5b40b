"""The run folder's plots: training curves, prediction overlays, the confusion matrix.

Drawn with matplotlib's object API (``matplotlib.figure.Figure`` on a ``FigureCanvasAgg``):
nothing here touches pyplot's global state or the user's chosen backend, so the plots work
in threads, on servers without a display and inside notebooks alike.

* ``plot_curves(metrics_csv, out)``: loss and mIoU per epoch, one line per split;
* ``plot_predictions(images, targets, predictions, out)``: one row per image: the input,
  the ground truth over it, the prediction over it, with a legend of the class colours;
* ``plot_confusion(confusion, out)``: the row-normalised confusion matrix as a heat map;
* ``palette(classes)``: the class colours (class 0 black), shared with the palette PNGs
  that ``segcore predict`` writes; ``overlay(image, mask)`` blends them over an image.

Example::

    from segcore_train.plots import plot_curves, plot_confusion
    plot_curves(run / "metrics.csv", run / "curves.png")
    plot_confusion(confusion_matrix(predictions, targets, classes=4), run / "confusion.png")
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from segcore.errors import InvalidOptionError

#: The colour of pixels a mask marks as ignored (``ignore_index``); no class gets it.
IGNORE_COLOR = (255, 255, 255)
#: How strongly ``overlay`` paints the class colours over the image (0: image only).
OVERLAY_ALPHA = 0.5
#: The confusion matrix is annotated with numbers up to this many classes.
MAX_ANNOTATED_CLASSES = 20
#: The columns ``plot_curves`` needs in the metrics CSV.
CURVE_COLUMNS = ("epoch", "split", "loss", "miou")

# High-contrast colours for classes 1..19 (the first classes are the ones people look at);
# further classes take the PASCAL VOC palette's colours that are not already in use.
_LEADING_COLORS = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128),
)


def palette(classes: int) -> list[tuple[int, int, int]]:
    """``classes`` distinct RGB colours (0..255), the same on every call: class 0 is black.

    Classes 1..19 get high-contrast colours, the later ones colours of the PASCAL VOC
    palette; none is white (``IGNORE_COLOR``, the colour of ignored pixels). For a palette
    PNG: ``image.putpalette([v for rgb in palette(256) for v in rgb])``.

    Example: ``palette(3) == [(0, 0, 0), (230, 25, 75), (60, 180, 75)]``.
    """
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise InvalidOptionError(f"palette: classes must be a positive int, got {classes!r}")
    colors: list[tuple[int, int, int]] = [(0, 0, 0), *_LEADING_COLORS[: classes - 1]]
    used = set(colors) | {IGNORE_COLOR}
    index = 1
    while len(colors) < classes:
        color = _voc_color(index)
        index += 1
        if color not in used:
            used.add(color)
            colors.append(color)
    return colors


def _voc_color(index: int) -> tuple[int, int, int]:
    """The PASCAL VOC palette's colour of ``index`` (its bits spread over R, G and B)."""
    red = green = blue = 0
    shift = 7
    while index and shift >= 0:
        red |= (index & 1) << shift
        green |= ((index >> 1) & 1) << shift
        blue |= ((index >> 2) & 1) << shift
        index >>= 3
        shift -= 1
    return red, green, blue


# -- curves ------------------------------------------------------------------------------------
def plot_curves(metrics_csv: Path, out: Path) -> Path:
    """Plot loss and mIoU per epoch for each split of a metrics CSV; write a PNG to ``out``.

    Args:
        metrics_csv: a CSV with at least the columns ``epoch``, ``split``, ``loss`` and
            ``miou`` (one row per epoch and split, as the training run writes); other columns
            are ignored, and an empty cell (a split without mIoU) leaves a gap.
        out: the PNG to write (its folder is created).

    Returns ``out``. Raises ``InvalidOptionError`` for a missing or empty file, missing
    columns, or values that are not numbers.

    Example: ``plot_curves(run / "metrics.csv", run / "curves.png")``.
    """
    metrics_csv, out = Path(metrics_csv), Path(out)
    series = _read_curves(metrics_csv)
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, miou_axes = figure.subplots(1, 2)
    for axes, column, title in ((loss_axes, "loss", "loss"), (miou_axes, "miou", "mIoU")):
        for split, rows in series.items():
            points = [(epoch, values[column]) for epoch, values in rows
                      if values[column] is not None]
            if points:
                epochs, values = zip(*points)
                axes.plot(epochs, values, marker="o", markersize=3, label=split)
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    miou_axes.set_ylim(0.0, 1.0)
    return _save(figure, out)


def _read_curves(path: Path) -> dict[str, list[tuple[float, dict[str, float | None]]]]:
    if not path.is_file():
        raise InvalidOptionError(
            f"plot_curves: {path} does not exist; pass the metrics.csv of a training run")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in CURVE_COLUMNS if column not in header]
        if not header:
            raise InvalidOptionError(
                f"plot_curves: {path} is empty; it needs a header with the columns "
                f"{', '.join(CURVE_COLUMNS)} and one row per epoch and split")
        if missing:
            raise InvalidOptionError(
                f"plot_curves: {path} lacks the column(s) {', '.join(missing)} (it has "
                f"{', '.join(header)}); it needs {', '.join(CURVE_COLUMNS)}")
        series: dict[str, list[tuple[float, dict[str, float | None]]]] = {}
        for line, row in enumerate(reader, start=2):
            epoch = _number(row["epoch"], path, line, "epoch")
            if epoch is None:
                raise InvalidOptionError(f"plot_curves: {path} line {line} has no epoch")
            values = {column: _number(row[column], path, line, column)
                      for column in ("loss", "miou")}
            series.setdefault(row["split"] or "?", []).append((epoch, values))
    if not series:
        raise InvalidOptionError(
            f"plot_curves: {path} has a header but no rows; train for an epoch first")
    for rows in series.values():
        rows.sort(key=lambda row: row[0])
    return series


def _number(text: str | None, path: Path, line: int, column: str) -> float | None:
    if text is None or not text.strip() or text.strip().lower() in ("nan", "n/a", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidOptionError(
            f"plot_curves: {path} line {line}: {column} is {text!r}, not a number") from None
    return value if math.isfinite(value) else None


# -- predictions -------------------------------------------------------------------------------
def overlay(image: np.ndarray, mask: np.ndarray, colors: Sequence[tuple[int, int, int]], *,
            ignore_index: int | None = None, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Blend class colours over an image: ``(1 - alpha) * image + alpha * colour``.

    Args:
        image: ``(H, W, 3)`` float RGB in [0, 1].
        mask: ``(H, W)`` integer class indices, each below ``len(colors)`` (or
            ``ignore_index``).
        colors: RGB 0..255 per class (``palette(classes)``).
        ignore_index: pixels of this value are painted ``IGNORE_COLOR``, opaque.

    Returns ``(H, W, 3)`` float in [0, 1].
    """
    table = np.asarray(colors, dtype=np.float64) / 255.0
    ignored = mask == ignore_index if ignore_index is not None else np.zeros(mask.shape, bool)
    indices = np.where(ignored, 0, mask)
    blended = (1.0 - alpha) * image + alpha * table[indices]
    blended[ignored] = np.asarray(IGNORE_COLOR, dtype=np.float64) / 255.0
    return np.clip(blended, 0.0, 1.0)


def plot_predictions(
    images: torch.Tensor,
    targets: torch.Tensor,
    predictions: torch.Tensor,
    out: Path,
    *,
    class_names: Sequence[str] | None = None,
    ignore_index: int | None = None,
) -> Path:
    """Draw one row per image: the input, the ground truth over it, the prediction over it.

    Args:
        images: ``(N, C, H, W)`` float in [0, 1], not normalised (values outside are
            clipped): 1 channel is shown gray, 3 as RGB, other counts by their first channel.
        targets: ``(N, H, W)`` integer class indices (``ignore_index`` allowed).
        predictions: ``(N, H, W)`` integer class indices.
        out: the PNG to write.
        class_names: one name per class, for the legend (default ``class 0``, ``class 1``...);
            they also fix the number of classes, else it is the largest index plus one.
        ignore_index: target value of pixels left out of training; drawn white.

    Returns ``out``. Raises ``InvalidOptionError`` for tensors of the wrong shapes or types,
    or class indices without a name.

    Example: ``plot_predictions(x, y, logits.argmax(1), run / "predictions.png")``.
    """
    out = Path(out)
    images, targets, predictions = _check_prediction_inputs(images, targets, predictions)
    valid_targets = targets[targets != ignore_index] if ignore_index is not None else targets
    largest = max(int(valid_targets.max()) if valid_targets.numel() else 0,
                  int(predictions.max()) if predictions.numel() else 0)
    smallest = min(int(valid_targets.min()) if valid_targets.numel() else 0,
                   int(predictions.min()) if predictions.numel() else 0)
    if smallest < 0:
        raise InvalidOptionError(
            f"plot_predictions: class indices must be >= 0, found {smallest}"
            + ("" if ignore_index is not None else "; pass ignore_index= for ignored pixels"))
    if class_names is not None:
        names = [str(name) for name in class_names]
        if largest >= len(names):
            raise InvalidOptionError(
                f"plot_predictions: the masks hold class {largest} but class_names names "
                f"{len(names)} classes (0..{len(names) - 1}); pass a name for every class")
    else:
        names = [f"class {k}" for k in range(largest + 1)]
    colors = palette(max(len(names), 1))

    count, height, width = targets.shape
    panel = 3.0
    aspect = height / max(width, 1)
    figure = Figure(figsize=(3 * panel, count * panel * aspect + 0.8), layout="constrained")
    axes = np.asarray(figure.subplots(count, 3, squeeze=False))
    titles = ("input", "ground truth", "prediction")
    for row in range(count):
        rgb = _as_rgb(images[row])
        target = targets[row].numpy()
        shown = (rgb, overlay(rgb, target, colors, ignore_index=ignore_index),
                 overlay(rgb, predictions[row].numpy(), colors))
        for column, picture in enumerate(shown):
            axis = axes[row, column]
            axis.imshow(picture, interpolation="nearest", vmin=0.0, vmax=1.0)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(titles[column])
    handles = [Patch(facecolor=np.asarray(color) / 255.0, edgecolor="gray", label=name)
               for name, color in zip(names, colors)]
    if ignore_index is not None:
        handles.append(Patch(facecolor=np.asarray(IGNORE_COLOR) / 255.0, edgecolor="gray",
                             label=f"ignored ({ignore_index})"))
    figure.legend(handles=handles, loc="outside lower center",
                  ncol=min(len(handles), 6), fontsize="small", frameon=False)
    return _save(figure, out)


def _check_prediction_inputs(
    images: torch.Tensor, targets: torch.Tensor, predictions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    for name, tensor, rank, what in (
            ("images", images, 4, "(N, C, H, W) float"),
            ("targets", targets, 3, "(N, H, W) integer class indices"),
            ("predictions", predictions, 3, "(N, H, W) integer class indices")):
        if not isinstance(tensor, torch.Tensor):
            raise InvalidOptionError(
                f"plot_predictions: {name} must be a torch.Tensor {what}, got "
                f"{type(tensor).__name__}")
        if tensor.dim() != rank:
            hint = " (take logits.argmax(1) of the model's output)" if rank == 3 else ""
            raise InvalidOptionError(
                f"plot_predictions: {name} must be {what}, got shape {tuple(tensor.shape)}"
                + hint)
    if not images.is_floating_point():
        raise InvalidOptionError(
            f"plot_predictions: images must be float in [0, 1], got {images.dtype}; use "
            "images.float() / 255 for 8-bit images")
    for name, tensor in (("targets", targets), ("predictions", predictions)):
        if tensor.is_floating_point() or tensor.is_complex():
            raise InvalidOptionError(
                f"plot_predictions: {name} must hold integer class indices, got {tensor.dtype}")
    if not (images.shape[0] == targets.shape[0] == predictions.shape[0]):
        raise InvalidOptionError(
            f"plot_predictions: images, targets and predictions must hold the same number of "
            f"images N, got {images.shape[0]}, {targets.shape[0]} and {predictions.shape[0]}")
    if images.shape[0] == 0:
        raise InvalidOptionError("plot_predictions: no image to draw (N = 0)")
    sizes = {tuple(images.shape[-2:]), tuple(targets.shape[-2:]), tuple(predictions.shape[-2:])}
    if len(sizes) != 1:
        raise InvalidOptionError(
            f"plot_predictions: images {tuple(images.shape[-2:])}, targets "
            f"{tuple(targets.shape[-2:])} and predictions {tuple(predictions.shape[-2:])} "
            "must have the same height and width")
    return (images.detach().float().cpu(), targets.detach().long().cpu(),
            predictions.detach().long().cpu())


def _as_rgb(image: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W, 3)`` in [0, 1]: gray for 1 (or not 3) channels, RGB for 3."""
    picture = image.clamp(0.0, 1.0).numpy()
    if picture.shape[0] == 3:
        return picture.transpose(1, 2, 0).astype(np.float64)
    return np.repeat(picture[0][:, :, None], 3, axis=2).astype(np.float64)


# -- confusion matrix --------------------------------------------------------------------------
def plot_confusion(confusion: torch.Tensor, out: Path, *,
                   class_names: Sequence[str] | None = None) -> Path:
    """Draw a confusion matrix as a heat map normalised per row (per true class).

    Args:
        confusion: ``(K, K)`` pixel counts, rows the true class, columns the predicted one
            (``segcore_train.confusion_matrix``).
        out: the PNG to write.
        class_names: ``K`` names for the axes (default ``0..K-1``).

    Each cell shows the share of its row (and the count); up to ``MAX_ANNOTATED_CLASSES``
    classes are annotated, larger matrices only coloured. A class absent from the truth
    has an empty (zero) row. Returns ``out``; raises ``InvalidOptionError`` for a matrix that
    is not square or holds negative values, or names of another count.

    Example: ``plot_confusion(result.confusion, run / "confusion.png", class_names=names)``.
    """
    out = Path(out)
    if not isinstance(confusion, torch.Tensor):
        confusion = torch.as_tensor(np.asarray(confusion))
    if confusion.dim() != 2 or confusion.shape[0] != confusion.shape[1] or not confusion.numel():
        raise InvalidOptionError(
            f"plot_confusion: confusion must be a square (K, K) matrix of counts, got shape "
            f"{tuple(confusion.shape)}")
    counts = confusion.detach().cpu().double().numpy()
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise InvalidOptionError(
            "plot_confusion: confusion must hold counts (finite, >= 0), found negative or "
            "non-finite values")
    classes = counts.shape[0]
    if class_names is not None:
        names = [str(name) for name in class_names]
        if len(names) != classes:
            raise InvalidOptionError(
                f"plot_confusion: class_names has {len(names)} names for {classes} classes")
    else:
        names = [str(k) for k in range(classes)]
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)

    side = min(max(4.0, 0.55 * classes + 2.5), 24.0)
    figure = Figure(figsize=(side + 1.0, side), layout="constrained")
    axis = figure.subplots()
    picture = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(picture, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    axis.set_xticks(range(classes), labels=names, rotation=45 if classes > 4 else 0,
                    ha="right" if classes > 4 else "center")
    axis.set_yticks(range(classes), labels=names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    total = counts.sum()
    axis.set_title(f"confusion matrix ({int(total)} pixels, rows sum to 100%)")
    if classes <= MAX_ANNOTATED_CLASSES:
        size = 9 if classes <= 8 else 7 if classes <= 14 else 5.5
        for truth in range(classes):
            for predicted in range(classes):
                share = shares[truth, predicted]
                text = f"{100 * share:.1f}%\n{_short_count(counts[truth, predicted])}"
                axis.text(predicted, truth, text, ha="center", va="center", fontsize=size,
                          color="white" if share > 0.5 else "black")
    return _save(figure, out)


def _short_count(count: float) -> str:
    count = int(count)
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if count >= 10 * size:
            return f"{count / size:.0f}{unit}"
    return str(count)


def _save(figure: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(out, format="png", dpi=100)
    return out
