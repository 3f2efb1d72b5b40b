"""A deterministic synthetic segmentation dataset: shapes on textured backgrounds.

Each image has a textured background (slow gratings and smooth noise between two nearby random
colours, uneven lighting), 2 to 5 filled shapes that overlap in part and occlude one another
(disk, rectangle, triangle, ring, star, cross, hexagon: one class each), then blur and noise,
at a size drawn per image (sides between ``min_size`` and ``size``). A shape's colour is
random (kept at least ``MIN_CONTRAST`` away from the background's colours) and says nothing
about its class; its class shows in its outline and in its surface (flat, striped or checked,
``PATTERNS``), as real classes differ in form and material. A model has to learn both from
pixels: a real learning problem that needs no download.

The same arguments give byte-identical files (every random draw comes from
``numpy.random.default_rng([seed, index])`` and the PNG writer is deterministic).

Example::

    samples = write_synthetic_dataset("data/synth", count=200, size=128, classes=4, seed=0)
    report = scan("data/synth", classes=4)
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from segcore.errors import InvalidOptionError
from segcore_train.data import Sample, split_samples
from segcore_train.errors import DataError
from segcore_train.layout import (
    CLASSES_FILE,
    IMAGES_DIR,
    MASKS_DIR,
    SPLITS_FILE,
    SYNTH_CLASSES,
    SYNTH_COUNT,
    SYNTH_MAX_CLASSES,
    SYNTH_SEED,
    SYNTH_SIZE,
    VAL_FRACTION,
)

#: Class k > 0 is the shape SHAPES[k - 1]; class 0 is the background.
SHAPES = ("disk", "rectangle", "triangle", "ring", "star", "cross", "hexagon")
CLASS_NAMES = ("background", *SHAPES)
#: The surface of class k > 0: PATTERNS[(k - 1) % 3].
PATTERNS = ("flat", "striped", "checked")
#: Colours of the mask PNGs' palette, by class (background black).
PALETTE = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240),
)
#: Written next to the data: the arguments that made it.
METADATA_FILE = "synth.json"
_FILE_PREFIX = "synth_"
#: The smallest RGB distance (colours in [0, 1]) between a shape's paint and the background's.
MIN_CONTRAST = 0.35
#: The largest RGB distance between the background's two colours.
BACKGROUND_SPREAD = 0.3
#: A shape's radius, as a fraction of the image's shorter side: drawn uniformly in this range.
SHAPE_RADIUS = (0.12, 0.24)


@dataclass(frozen=True)
class SyntheticSample:
    """One rendered sample.

    ``image``: ``(H, W, 3)`` uint8; ``mask``: ``(H, W)`` uint8 class indices (the top-most
    shape wins); ``instances``: ``(class, (H, W) bool region)`` of every shape in drawing
    order, before occlusion.
    """

    image: np.ndarray
    mask: np.ndarray
    instances: tuple[tuple[int, np.ndarray], ...]


def render_sample(index: int, *, size: int = SYNTH_SIZE, classes: int = SYNTH_CLASSES,
                  seed: int = SYNTH_SEED, min_size: int | None = None) -> SyntheticSample:
    """Render sample ``index`` of the dataset ``(size, classes, seed, min_size)``.

    Height and width are drawn independently in ``[min_size, size]`` (``min_size`` defaults to
    ``round(0.75 * size)``; ``min_size=size`` makes every image ``size`` x ``size``). The last
    shape drawn has class ``1 + index % (classes - 1)``, so every class appears once there
    are ``classes - 1`` samples.

    Example: ``render_sample(0, size=64).image.shape[2] == 3``.
    """
    low = _check_arguments(1, size, classes, seed, min_size)
    rng = np.random.default_rng([seed, index])
    height, width = (int(v) for v in rng.integers(low, size + 1, size=2))
    image, background_colours = _background(rng, height, width)
    mask = np.zeros((height, width), dtype=np.uint8)
    instances = []
    shape_count = int(rng.integers(2, 6))
    centers: list[tuple[float, float, float]] = []
    for number in range(shape_count):
        last = number == shape_count - 1
        label = 1 + index % (classes - 1) if last else int(rng.integers(1, classes))
        radius = float(rng.uniform(*SHAPE_RADIUS)) * min(height, width)
        if centers and rng.random() < 0.6:  # against an earlier shape: they overlap in part
            near_y, near_x, near = centers[int(rng.integers(len(centers)))]
            distance = float(rng.uniform(0.6, 1.0)) * (near + radius)
            direction = float(rng.uniform(0.0, 2 * math.pi))
            cy = near_y + distance * math.sin(direction)
            cx = near_x + distance * math.cos(direction)
        else:
            margin = 0.2 if last else 0.0
            cy = float(rng.uniform(margin, 1 - margin)) * height
            cx = float(rng.uniform(margin, 1 - margin)) * width
        centers.append((cy, cx, radius))
        region = _rasterise(SHAPES[label - 1], rng, cy, cx, radius, height, width)
        if not region.any():
            continue
        fill = _fill(rng, height, width, background_colours, label)
        image[region] = fill[region]
        mask[region] = label
        instances.append((label, region))
    image = _lighting(rng, image)
    pixels = Image.fromarray(_to_uint8(image))
    pixels = pixels.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 0.8))))
    noisy = np.asarray(pixels, dtype=np.float32) / 255.0
    noisy = noisy + rng.normal(0.0, float(rng.uniform(0.01, 0.06)), noisy.shape)
    return SyntheticSample(_to_uint8(noisy), mask, tuple(instances))


def write_synthetic_dataset(
    directory: str | Path,
    *,
    count: int = SYNTH_COUNT,
    size: int = SYNTH_SIZE,
    classes: int = SYNTH_CLASSES,
    seed: int = SYNTH_SEED,
    min_size: int | None = None,
    overwrite: bool = False,
) -> list[Sample]:
    """Write ``count`` samples as a dataset folder (see ``segcore_train.layout``).

    Args:
        directory: created if needed; must not hold a dataset already unless ``overwrite``
            (which replaces the files this function writes and leaves others alone).
        count: number of images; size: the largest height and width; classes: background
            plus ``classes - 1`` shapes, 2 to 8; seed: the dataset.
        min_size: the smallest height and width (default 3/4 of ``size``); ``size`` makes
            images of one size, which train and evaluate alike without resizing.

    Writes ``images/synth_0000.png`` (RGB), ``masks/synth_0000.png`` (palette PNG of class
    indices), ``classes.txt``, ``splits.json`` (80/20, by ``split_samples``) and
    ``synth.json`` (the arguments). Returns the samples.

    Example: ``write_synthetic_dataset("data/synth", count=50, size=96)``.
    """
    min_size = _check_arguments(count, size, classes, seed, min_size)
    root = Path(directory)
    images_dir, masks_dir = root / IMAGES_DIR, root / MASKS_DIR
    _prepare(root, images_dir, masks_dir, overwrite)
    digits = max(4, len(str(count - 1)))
    palette = [value for colour in PALETTE for value in colour]
    samples = []
    for index in range(count):
        stem = f"{_FILE_PREFIX}{index:0{digits}d}"
        sample = render_sample(index, size=size, classes=classes, seed=seed, min_size=min_size)
        image_path, mask_path = images_dir / f"{stem}.png", masks_dir / f"{stem}.png"
        Image.fromarray(sample.image).save(image_path, format="PNG", compress_level=6)
        mask = Image.fromarray(sample.mask)
        mask.putpalette(palette)
        mask.save(mask_path, format="PNG", compress_level=6)
        samples.append(Sample(stem, image_path, (mask_path,)))
    (root / CLASSES_FILE).write_text("\n".join(CLASS_NAMES[:classes]) + "\n", encoding="utf-8")
    splits = split_samples(samples, VAL_FRACTION, seed)
    _write_json(root / SPLITS_FILE, {name: [s.stem for s in members]
                                     for name, members in splits.items()})
    _write_json(root / METADATA_FILE, {"generator": "segcore-train synth", "count": count,
                                       "size": size, "min_size": min_size, "classes": classes,
                                       "seed": seed})
    return samples


def _check_arguments(count: int, size: int, classes: int, seed: int,
                     min_size: int | None) -> int:
    """Refuse bad arguments (``InvalidOptionError``); returns the smallest side."""
    checks: list[tuple[str, object, int, int | None]] = [
        ("count", count, 1, None), ("size", size, 16, 4096),
        ("classes", classes, 2, SYNTH_MAX_CLASSES), ("seed", seed, 0, None)]
    if min_size is not None:
        checks.append(("min_size", min_size, 16, size if isinstance(size, int) else None))
    for name, value, low, high in checks:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidOptionError(f"{name} must be an int, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise InvalidOptionError(f"{name} must be {bounds}, got {value}"
                                     + (" (background and up to 7 shapes: "
                                        + ", ".join(SHAPES) + ")" if name == "classes" else ""))
    return max(1, round(0.75 * size)) if min_size is None else min_size


def _prepare(root: Path, images_dir: Path, masks_dir: Path, overwrite: bool) -> None:
    existing = [path for folder in (images_dir, masks_dir) if folder.is_dir()
                for path in folder.iterdir()]
    if existing and not overwrite:
        raise DataError(
            f"{root} already holds a dataset ({len(existing)} files in {IMAGES_DIR}/ and "
            f"{MASKS_DIR}/); choose an empty directory, or pass overwrite=True (--overwrite) "
            "to replace the synthetic files")
    if overwrite:
        for path in existing:
            if path.is_file() and path.name.startswith(_FILE_PREFIX) and path.suffix == ".png":
                path.unlink()
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, content: object) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


# -- drawing ---------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Noise in [0, 1] varying over about ``cell`` pixels (bicubic upsampling of a coarse grid)."""
    coarse = rng.random((height // cell + 2, width // cell + 2)).astype(np.float32)
    grid = Image.fromarray(coarse)  # mode "F"
    smooth = np.asarray(grid.resize((width, height), Image.Resampling.BICUBIC), np.float32)
    return np.clip(smooth, 0.0, 1.0)


def _background(rng: np.random.Generator, height: int,
                width: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Two random colours blended by gratings and smooth noise: ``(H, W, 3)`` float32.

    Also returns the two colours, which shapes are painted away from.
    """
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = np.zeros((height, width), dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        frequency = float(rng.uniform(0.02, 0.08))
        angle = float(rng.uniform(0.0, math.pi))
        phase = float(rng.uniform(0.0, 2 * math.pi))
        amplitude = float(rng.uniform(0.2, 1.0))
        texture += amplitude * np.sin(
            2 * math.pi * frequency * (xs * math.cos(angle) + ys * math.sin(angle)) + phase)
    texture = texture - texture.min()
    texture = texture / max(float(texture.max()), 1e-6)
    weight = float(rng.uniform(0.3, 0.8))
    cell = int(rng.integers(8, 20))
    texture = (1 - weight) * texture + weight * _smooth_noise(rng, height, width, cell)
    first = rng.random(3).astype(np.float32)
    shift = rng.normal(0.0, 1.0, 3).astype(np.float32)
    shift *= float(rng.uniform(0.1, BACKGROUND_SPREAD)) / max(float(np.linalg.norm(shift)), 1e-6)
    second = np.clip(first + shift, 0.0, 1.0)
    image = first * (1 - texture[..., None]) + second * texture[..., None]
    return image, (first, second)


def _fill(rng: np.random.Generator, height: int, width: int, avoid: Sequence[np.ndarray],
          label: int) -> np.ndarray:
    """A shape's paint, of a random colour: ``(H, W, 3)``.

    The surface depends on the class, as materials differ between real classes: class
    ``label`` is flat, striped or checked by ``(label - 1) % 3`` (``PATTERNS``); the
    colours, stripe angle and period, and pattern strength are random.

    The colour is drawn again (up to 20 times) while it is within ``MIN_CONTRAST`` (RGB
    distance in [0, 1]) of one of the ``avoid`` colours, so that shapes stand out from the
    background, as objects in real images mostly do.
    """
    colour = rng.random(3).astype(np.float32)
    for _ in range(20):
        if min(float(np.linalg.norm(colour - other)) for other in avoid) >= MIN_CONTRAST:
            break
        colour = rng.random(3).astype(np.float32)
    pattern = PATTERNS[(label - 1) % len(PATTERNS)]
    if pattern == "flat":
        return np.broadcast_to(colour, (height, width, 3)).copy()
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = float(rng.uniform(0.0, math.pi))
    along = xs * math.cos(angle) + ys * math.sin(angle)
    across = ys * math.cos(angle) - xs * math.sin(angle)
    period = float(rng.uniform(4.0, 7.0))
    if pattern == "striped":
        stripes = 0.5 + 0.5 * np.sin(2 * math.pi * along / period)
    else:  # checked: a rotated checkerboard
        stripes = (np.floor(along / period) + np.floor(across / period)) % 2
    other = rng.random(3).astype(np.float32)
    for _ in range(20):  # a pattern that shows: its second colour far from the first
        if float(np.linalg.norm(other - colour)) >= 2 * MIN_CONTRAST:
            break
        other = rng.random(3).astype(np.float32)
    strength = float(rng.uniform(0.4, 0.7))
    mix = strength * stripes[..., None]
    return colour * (1 - mix) + other * mix


def _lighting(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = float(rng.uniform(0.0, 2 * math.pi))
    ramp = (xs * math.cos(angle) + ys * math.sin(angle)) / max(height, width)
    gain = 1.0 + float(rng.uniform(0.0, 0.35)) * (ramp - float(ramp.mean()))
    return image * gain[..., None]


Polygon = list[tuple[float, float]]


def _outline(shape: str, rng: np.random.Generator, radius: float) -> list[Polygon]:
    """Polygons (x, y) around the origin: the first is filled, the others are holes."""
    def ring_of(count: int, radii: Sequence[float], squash: float = 1.0,
                jitter: float = 0.0) -> Polygon:
        points = []
        for k in range(count):
            turn = 2 * math.pi * k / count + (float(rng.uniform(-jitter, jitter)) if jitter else 0)
            r = radii[k % len(radii)]
            points.append((r * math.cos(turn), squash * r * math.sin(turn)))
        return points

    if shape == "disk":
        return [ring_of(48, [radius], squash=float(rng.uniform(0.85, 1.0)))]
    if shape == "rectangle":
        half_w, half_h = radius, radius * float(rng.uniform(0.45, 0.9))
        return [[(-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)]]
    if shape == "triangle":
        return [ring_of(3, [radius * float(rng.uniform(0.9, 1.15)) for _ in range(3)],
                        jitter=0.25)]
    if shape == "ring":
        squash = float(rng.uniform(0.85, 1.0))
        inner = radius * float(rng.uniform(0.45, 0.65))
        return [ring_of(48, [radius], squash), ring_of(48, [inner], squash)]
    if shape == "star":
        return [ring_of(10, [radius, radius * float(rng.uniform(0.4, 0.5))])]
    if shape == "cross":
        arm = radius * float(rng.uniform(0.25, 0.38))
        r = radius
        return [[(-arm, -r), (arm, -r), (arm, -arm), (r, -arm), (r, arm), (arm, arm),
                 (arm, r), (-arm, r), (-arm, arm), (-r, arm), (-r, -arm), (-arm, -arm)]]
    return [ring_of(6, [radius])]  # hexagon


def _rasterise(shape: str, rng: np.random.Generator, cy: float, cx: float, radius: float,
               height: int, width: int) -> np.ndarray:
    """The ``(H, W)`` bool region of one shape, rotated by a random angle."""
    angle = float(rng.uniform(0.0, 2 * math.pi))
    cos, sin = math.cos(angle), math.sin(angle)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for number, polygon in enumerate(_outline(shape, rng, radius)):
        placed = [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in polygon]
        draw.polygon(placed, fill=255 if number == 0 else 0)
    return np.asarray(canvas) > 0
