"""The run folder's plots: curves, prediction overlays, confusion matrix, the class palette."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image
from segcore_train.plots import (
    IGNORE_COLOR,
    overlay,
    palette,
    plot_confusion,
    plot_curves,
    plot_predictions,
)

from segcore.errors import InvalidOptionError

METRICS = """epoch,split,loss,miou,lr
1,train,1.20,,0.001
1,val,1.30,0.21,
2,train,0.80,0.40,0.001
2,val,0.95,0.45,
3,train,0.60,0.55,0.0005
3,val,0.70,0.58,
"""


def _png(path):
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_palette_is_deterministic_distinct_and_starts_black():
    colors = palette(256)
    assert colors[0] == (0, 0, 0)
    assert len(colors) == 256 and len(set(colors)) == 256
    assert IGNORE_COLOR not in colors
    assert all(0 <= value <= 255 for color in colors for value in color)
    assert palette(256) == colors
    assert palette(5) == colors[:5]  # a prefix: the same class keeps its colour
    assert len(set(palette(600))) == 600
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidOptionError, match="classes must be a positive int"):
            palette(bad)


def test_curves_write_a_png(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(METRICS)
    out = tmp_path / "plots" / "curves.png"
    assert plot_curves(metrics, out) == out
    picture = _png(out)
    assert picture.shape[0] > 100 and picture.shape[1] > 200
    assert picture.std() > 0  # something is drawn


@pytest.mark.parametrize(("text", "words"), [
    ("", "is empty"),
    ("epoch,split,loss,miou\n", "no rows"),
    ("epoch,split,loss\n1,train,0.5\n", "lacks the column(s) miou"),
    ("epoch,phase,loss\n1,train,0.5\n", "lacks the column(s) split, miou"),
    ("epoch,split,loss,miou\n1,val,high,0.3\n", "line 2: loss is 'high', not a number"),
    ("epoch,split,loss,miou\n,val,0.4,0.3\n", "line 2 has no epoch"),
])
def test_curves_refuse_bad_csv(tmp_path, text, words):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(text)
    with pytest.raises(InvalidOptionError) as error:
        plot_curves(metrics, tmp_path / "curves.png")
    assert words in str(error.value) and str(metrics) in str(error.value)
    assert not (tmp_path / "curves.png").exists()


def test_curves_name_a_missing_file(tmp_path):
    with pytest.raises(InvalidOptionError, match="does not exist"):
        plot_curves(tmp_path / "nope.csv", tmp_path / "curves.png")


def test_overlay_blends_class_colours_and_paints_ignored_pixels():
    image = np.full((2, 3, 3), 0.5)
    mask = np.array([[0, 1, 2], [2, 255, 1]])
    colors = palette(3)
    blended = overlay(image, mask, colors, ignore_index=255, alpha=0.5)
    expected = 0.25 + 0.5 * np.asarray(colors[2]) / 255
    np.testing.assert_allclose(blended[0, 2], expected)
    np.testing.assert_allclose(blended[0, 0], [0.25, 0.25, 0.25])  # black: darker
    np.testing.assert_allclose(blended[1, 1], np.asarray(IGNORE_COLOR) / 255)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_predictions_write_a_png_for_any_channel_count(tmp_path, channels):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, channels, 24, 40, generator=generator)
    targets = torch.randint(0, 3, (2, 24, 40), generator=generator)
    targets[:, :4] = 255
    predictions = torch.randint(0, 3, (2, 24, 40), generator=generator)
    out = plot_predictions(images, targets, predictions, tmp_path / "predictions.png",
                           class_names=["background", "disk", "square"], ignore_index=255)
    assert out == tmp_path / "predictions.png"
    picture = _png(out)
    assert picture.shape[1] > picture.shape[0] > 100  # two rows of three panels


def _count_near(picture: np.ndarray, rgb: np.ndarray, tolerance: int = 3) -> int:
    return int((np.abs(picture.astype(int) - rgb).max(axis=2) <= tolerance).sum())


def test_prediction_overlays_show_the_class_colours(tmp_path):
    # a uniform gray image, truth class 2 everywhere, prediction class 1 everywhere
    images = torch.full((1, 3, 48, 48), 0.5)
    targets = torch.full((1, 48, 48), 2)
    predictions = torch.full((1, 48, 48), 1)
    out = plot_predictions(images, targets, predictions, tmp_path / "predictions.png",
                           class_names=["background", "one", "two", "three"])
    picture = _png(out)
    colors = palette(4)
    blended = {k: np.rint(255 * (0.25 + 0.5 * np.asarray(colors[k]) / 255)) for k in range(4)}
    panel = picture.shape[0] * picture.shape[1] / 4  # a panel is about a third of a row
    # each overlay panel is a solid block of its blended colour; the input panel is gray
    assert _count_near(picture, blended[2]) > 0.3 * panel
    assert _count_near(picture, blended[1]) > 0.3 * panel
    assert _count_near(picture, np.array([128, 128, 128])) > 0.3 * panel
    assert _count_near(picture, blended[3]) < 0.01 * panel  # class 3 appears nowhere
    # the legend shows the pure colours
    assert _count_near(picture, np.asarray(colors[3])) > 20


@pytest.mark.parametrize(("arguments", "words"), [
    (dict(images=torch.rand(2, 24, 24)), "images must be (N, C, H, W) float"),
    (dict(targets=torch.zeros(2, 1, 24, 24, dtype=torch.long)),
     "targets must be (N, H, W) integer class indices"),
    (dict(predictions=torch.zeros(2, 3, 24, 24)), "predictions must be (N, H, W)"),
    (dict(targets=torch.zeros(3, 24, 24, dtype=torch.long)),
     "same number of images N, got 2, 3 and 2"),
    (dict(predictions=torch.zeros(2, 24, 20, dtype=torch.long)),
     "must have the same height and width"),
    (dict(targets=torch.zeros(2, 24, 24)), "targets must hold integer class indices"),
    (dict(images=torch.zeros(2, 3, 24, 24, dtype=torch.uint8)), "images must be float"),
    (dict(targets=torch.full((2, 24, 24), 5)), "hold class 5 but class_names names 3"),
    (dict(images=torch.rand(0, 3, 24, 24), targets=torch.zeros(0, 24, 24, dtype=torch.long),
          predictions=torch.zeros(0, 24, 24, dtype=torch.long)), "no image to draw"),
    (dict(images=[[0.0]]), "images must be a torch.Tensor"),
])
def test_predictions_refuse_bad_inputs(tmp_path, arguments, words):
    inputs = dict(images=torch.rand(2, 3, 24, 24),
                  targets=torch.zeros(2, 24, 24, dtype=torch.long),
                  predictions=torch.zeros(2, 24, 24, dtype=torch.long))
    inputs.update(arguments)
    with pytest.raises(InvalidOptionError) as error:
        plot_predictions(inputs["images"], inputs["targets"], inputs["predictions"],
                         tmp_path / "p.png", class_names=["a", "b", "c"])
    assert words in str(error.value)
    assert not (tmp_path / "p.png").exists()


def test_predictions_refuse_negative_targets_without_ignore_index(tmp_path):
    targets = torch.zeros(1, 8, 8, dtype=torch.long)
    targets[0, 0, 0] = -1
    with pytest.raises(InvalidOptionError, match="pass ignore_index="):
        plot_predictions(torch.rand(1, 3, 8, 8), targets, torch.zeros_like(targets),
                         tmp_path / "p.png")
    # with ignore_index=-1 the same masks draw
    assert plot_predictions(torch.rand(1, 3, 8, 8), targets, torch.zeros_like(targets),
                            tmp_path / "p.png", ignore_index=-1).is_file()


@pytest.mark.parametrize("classes", [2, 6, 25])
def test_confusion_writes_a_png(tmp_path, classes):
    generator = torch.Generator().manual_seed(classes)
    confusion = torch.randint(0, 5000, (classes, classes), generator=generator)
    confusion[0] = 0  # a class absent from the truth: an empty row, no division by zero
    names = [f"class {k}" for k in range(classes)]
    out = plot_confusion(confusion, tmp_path / "confusion.png", class_names=names)
    picture = _png(out)
    assert min(picture.shape[:2]) >= 300


def _dark_blue(picture: np.ndarray) -> int:
    picture = picture.astype(int)
    return int(((picture[:, :, 2] - picture[:, :, 0] > 60) & (picture[:, :, 0] < 40)).sum())


def test_confusion_colours_follow_the_row_shares(tmp_path):
    # a perfect matrix has two cells of the darkest blue; an empty one (no pixel) has none:
    # only the colour bar is dark there
    perfect = _png(plot_confusion(torch.tensor([[900, 0], [0, 100]]), tmp_path / "a.png"))
    empty = _png(plot_confusion(torch.zeros(2, 2, dtype=torch.long), tmp_path / "b.png"))
    assert perfect.shape == empty.shape
    area = perfect.shape[0] * perfect.shape[1]
    assert _dark_blue(perfect) > _dark_blue(empty) + 0.1 * area


@pytest.mark.parametrize(("confusion", "words"), [
    (torch.zeros(3, 4, dtype=torch.long), "square (K, K) matrix of counts, got shape (3, 4)"),
    (torch.zeros(3, dtype=torch.long), "got shape (3,)"),
    (torch.tensor([[1, -1], [0, 2]]), "negative or non-finite"),
    (torch.tensor([[1.0, float("nan")], [0.0, 2.0]]), "negative or non-finite"),
])
def test_confusion_refuses_bad_matrices(tmp_path, confusion, words):
    with pytest.raises(InvalidOptionError) as error:
        plot_confusion(confusion, tmp_path / "c.png")
    assert words in str(error.value)


def test_confusion_names_must_match(tmp_path):
    with pytest.raises(InvalidOptionError, match="class_names has 2 names for 3 classes"):
        plot_confusion(torch.eye(3, dtype=torch.long), tmp_path / "c.png", class_names="ab")


def test_plots_leave_pyplot_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    plot_confusion(torch.eye(2, dtype=torch.long), tmp_path / "c.png")
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:  # imported by someone else: no figure of ours
        assert not sys.modules["matplotlib.pyplot"].get_fignums()
