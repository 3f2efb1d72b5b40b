"""The synthetic dataset: deterministic files, and a real segmentation problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter
from segcore_train import DataError, render_sample, scan, write_synthetic_dataset
from segcore_train.synth import CLASS_NAMES, PATTERNS, SHAPES

from segcore.errors import InvalidOptionError

SMALL = {"count": 8, "size": 48}


def file_bytes(root):
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_arguments_write_byte_identical_files(tmp_path):
    write_synthetic_dataset(tmp_path / "one", seed=4, **SMALL)
    write_synthetic_dataset(tmp_path / "two", seed=4, **SMALL)
    first, second = file_bytes(tmp_path / "one"), file_bytes(tmp_path / "two")
    assert len(first) == 2 * SMALL["count"] + 3  # + classes.txt, splits.json, synth.json
    assert first == second


def test_another_seed_gives_other_images(tmp_path):
    write_synthetic_dataset(tmp_path / "one", seed=0, **SMALL)
    write_synthetic_dataset(tmp_path / "two", seed=1, **SMALL)
    first, second = file_bytes(tmp_path / "one"), file_bytes(tmp_path / "two")
    assert all(first[name] != second[name] for name in first if name.startswith("images/"))


def test_layout_palette_masks_and_metadata(tmp_path):
    root = tmp_path / "synth"
    samples = write_synthetic_dataset(root, count=5, size=40, classes=5, seed=2)
    assert [s.stem for s in samples] == [f"synth_{i:04d}" for i in range(5)]
    mask = Image.open(root / "masks" / "synth_0000.png")
    assert mask.mode == "P" and mask.getpalette()[3:6] == [230, 25, 75]
    assert Image.open(root / "images" / "synth_0000.png").mode == "RGB"
    assert (root / "classes.txt").read_text().split() == list(CLASS_NAMES[:5])
    splits = json.loads((root / "splits.json").read_text())
    assert sorted(splits["train"] + splits["val"]) == [s.stem for s in samples]
    assert json.loads((root / "synth.json").read_text())["seed"] == 2


def test_the_written_dataset_passes_the_check(tmp_path):
    write_synthetic_dataset(tmp_path / "synth", **SMALL)
    report = scan(tmp_path / "synth", classes=4)
    assert len(report.samples) == SMALL["count"] and report.class_names == list(CLASS_NAMES[:4])
    assert report.splits_source == "splits.json"


def test_every_class_appears_and_sizes_vary(tmp_path):
    write_synthetic_dataset(tmp_path / "synth", count=14, size=64, classes=8)
    report = scan(tmp_path / "synth", classes=8)
    assert all(count > 0 for count in report.class_images)
    assert report.class_pixels[0] < 0.95 * report.total_pixels  # shapes are not specks
    heights = {h for h, _ in report.sizes}
    widths = {w for _, w in report.sizes}
    assert len(report.sizes) >= 8 and len(heights) >= 4 and len(widths) >= 4
    assert min(heights) >= 48 and max(heights) <= 64


def test_min_size_bounds_the_sides(tmp_path):
    write_synthetic_dataset(tmp_path / "one", count=6, size=48, min_size=48)
    assert set(scan(tmp_path / "one", classes=4).sizes) == {(48, 48)}
    write_synthetic_dataset(tmp_path / "range", count=12, size=64, min_size=60)
    sides = [side for size in scan(tmp_path / "range", classes=4).sizes for side in size]
    assert min(sides) >= 60 and max(sides) <= 64 and len(set(sides)) > 1
    metadata = json.loads((tmp_path / "range" / "synth.json").read_text())
    assert metadata["min_size"] == 60


def test_shapes_overlap_and_occlude(tmp_path):
    overlapping = 0
    for index in range(10):
        sample = render_sample(index, size=64, classes=4)
        regions = [region for _, region in sample.instances]
        assert len(regions) >= 2
        covered = np.zeros(sample.mask.shape, dtype=int)
        for region in regions:
            covered += region
        overlapping += int((covered > 1).any())
        # the mask is the top-most shape: the last instance is fully visible
        label, last = sample.instances[-1]
        assert (sample.mask[last] == label).all()
    assert overlapping >= 5


def test_images_are_textured_noisy_and_colour_does_not_give_the_class():
    sample = render_sample(3, size=64, classes=4)
    background = sample.image[sample.mask == 0].astype(float)
    assert background.std(axis=0).min() > 5  # texture and noise, not a flat colour
    assert len(np.unique(sample.image.reshape(-1, 3), axis=0)) > 500
    # the same class is painted in different colours in different images
    means = []
    for index in range(12):
        other = render_sample(index, size=64, classes=2)  # one shape class: disks
        means.append(other.image[other.mask == 1].mean(axis=0))
    assert np.ptp(np.array(means), axis=0).max() > 80


def test_shapes_stand_out_from_the_background():
    for index in range(8):
        sample = render_sample(index, size=64, classes=4)
        image = sample.image.astype(float)
        background = image[sample.mask == 0].mean(axis=0)
        for label, region in sample.instances:
            visible = region & (sample.mask == label)
            if visible.sum() < 30:
                continue
            distance = np.linalg.norm(image[visible].mean(axis=0) - background) / 255
            assert distance > 0.1, (index, label, distance)


def test_the_surface_follows_the_class():
    """Flat shapes are even inside (but for noise and lighting); striped and checked ones vary
    (a 3x3 mean takes most of the noise out first)."""
    variation: dict[str, list[float]] = {pattern: [] for pattern in PATTERNS}
    for index in range(30):
        sample = render_sample(index, size=96, classes=4)
        label, region = sample.instances[-1]  # the top shape: fully visible
        eroded = Image.fromarray(region.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(7))
        inner = np.asarray(eroded) > 0
        if inner.sum() < 40:
            continue
        smooth = np.asarray(Image.fromarray(sample.image).filter(ImageFilter.BoxBlur(1)), float)
        variation[PATTERNS[(label - 1) % len(PATTERNS)]].append(
            float(smooth[inner].std(axis=0).max()))
    assert all(len(values) >= 3 for values in variation.values()), variation
    flat = np.median(variation["flat"])
    assert np.median(variation["striped"]) > 2 * flat
    assert np.median(variation["checked"]) > 2 * flat


def test_render_is_deterministic_per_index():
    first, again = render_sample(5, size=48), render_sample(5, size=48)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.mask, again.mask)
    other = render_sample(6, size=48)
    assert first.image.shape != other.image.shape or not np.array_equal(first.image, other.image)


def test_refuses_to_overwrite_unless_asked(tmp_path):
    root = tmp_path / "synth"
    write_synthetic_dataset(root, count=4, size=32)
    (root / "images" / "mine.png").write_bytes(b"user file")
    with pytest.raises(DataError, match=r"already holds a dataset.*--overwrite"):
        write_synthetic_dataset(root, count=2, size=32)
    write_synthetic_dataset(root, count=2, size=32, overwrite=True)
    names = sorted(path.name for path in (root / "images").iterdir())
    assert names == ["mine.png", "synth_0000.png", "synth_0001.png"]  # others kept


@pytest.mark.parametrize(("options", "words"), [
    ({"classes": 1}, "classes must be 2..8"),
    ({"classes": 9}, "classes must be 2..8"),
    ({"count": 0}, "count must be >= 1"),
    ({"size": 8}, "size must be 16..4096"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"size": 32, "min_size": 40}, "min_size must be 16..32, got 40"),
    ({"min_size": 8}, "min_size must be 16..128, got 8"),
    ({"min_size": 20.5}, "min_size must be an int"),
])
def test_bad_arguments(tmp_path, options, words):
    with pytest.raises(InvalidOptionError, match=words):
        write_synthetic_dataset(tmp_path / "synth", **options)


def test_shape_names_cover_the_classes():
    assert len(CLASS_NAMES) == 8 and CLASS_NAMES[1:] == SHAPES
