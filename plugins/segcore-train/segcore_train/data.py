"""The image/mask folder dataset: readers, up-front validation, splits, the torch ``Dataset``.

Layout (see ``segcore_train.layout``)::

    DIR/images/<stem>.png|.jpg|.jpeg|.tif|.tiff    the images
    DIR/masks/<stem>.png|.tif|.tiff                class indices (multi-class), or
    DIR/masks/<stem>/<k>.png, DIR/masks/<stem>.tif one mask per class (multi-label)
    DIR/splits.json                                optional {"train": [...], "val": [...]}

Images are read with Pillow (PNG, JPEG) and tifffile (TIFF, 16-bit and multi-channel
included); integer images are scaled to [0, 1] by their dtype's range (uint8 by 255, uint16
by 65535), floating-point images are taken as already in [0, 1] (as
``segcore.preprocessing`` does). Masks hold class indices 0..classes-1 (a grayscale or palette
PNG: a palette PNG's indices are the classes), or 0/255 for a binary task (``classes=2``).

Example::

    report = scan("data", classes=4)         # DataValidationError lists every problem
    train = report.dataset("train", transform=build_train_transform())
    image, mask = train[0]                   # (C, H, W) float32, (H, W) int64
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

from segcore.errors import InvalidOptionError
from segcore_train.errors import DataError, DataProblem, DataValidationError
from segcore_train.layout import (
    CLASSES_FILE,
    IMAGE_SUFFIXES,
    IMAGES_DIR,
    LOSSY_SUFFIXES,
    MASK_SUFFIXES,
    MASKS_DIR,
    MAX_LISTED_PROBLEMS,
    SPLIT_SEED,
    SPLITS_FILE,
    TIFF_SUFFIXES,
    TRAIN_SPLIT,
    VAL_FRACTION,
    VAL_SPLIT,
)

#: A transform takes and returns ``(image (C, H, W) float, mask)``.
Transform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

_LISTED_VALUES = 10  # how many bad mask values a message lists


@dataclass(frozen=True)
class Sample:
    """One image and its mask file(s).

    ``masks`` is one class-index mask (multi-class), ``K`` per-class masks in class order, or
    one ``K``-channel TIFF (multi-label).
    """

    stem: str
    image: Path
    masks: tuple[Path, ...]


# -- readers ---------------------------------------------------------------------------------
def read_image(path: str | Path, channels: int | None = None) -> np.ndarray:
    """An image file as an ``(H, W, C)`` array in the file's dtype (uint8, uint16, float32...).

    Args:
        path: a PNG, JPEG or TIFF file.
        channels: convert to this many channels (1 -> any by repetition, 4 -> 3 and 2 -> 1 by
            dropping alpha, 3 -> 1 by luma); ``None`` keeps the file's channels.

    Raises ``DataError`` naming the file when it cannot be read or converted.

    Example: ``read_image("images/a.tif").shape == (480, 640, 4)``.
    """
    path = Path(path)
    array = _read_array(path, as_mask=False)
    if array.ndim == 2:
        array = array[:, :, None]
    if channels is not None and array.shape[2] != channels:
        array = _convert_channels(array, channels, path)
    return array


def image_to_tensor(array: np.ndarray) -> torch.Tensor:
    """An ``(H, W, C)`` (or ``(H, W)``) image array as a ``(C, H, W)`` float32 tensor in [0, 1].

    Integer dtypes are divided by their maximum (uint8: 255, uint16: 65535); bool gives 0/1;
    floating-point values are kept.
    """
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype == np.bool_:
        values = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    else:
        values = array.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))


def read_mask(
    paths: str | Path | Sequence[str | Path],
    classes: int,
    *,
    multilabel: bool = False,
    ignore_index: int | None = None,
) -> np.ndarray:
    """A mask as class indices ``(H, W)`` int64, or multi-label ``(K, H, W)`` uint8 of 0/1.

    Args:
        paths: the mask file; for multi-label, ``K`` per-class files or one ``K``-channel TIFF.
        classes: the number of classes (multi-class, background included) or labels ``K``.
        multilabel: read ``K`` binary masks rather than one of class indices.
        ignore_index: a value allowed besides the classes (pixels the loss ignores).

    A 0/255 mask is read as 0/1 when ``classes == 2``. Raises ``DataError`` naming the file
    and the fix (values out of range are listed).

    Example: ``read_mask("masks/a.png", classes=4)`` -> values in 0..3.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    mask_paths = tuple(Path(path) for path in paths)
    _check_classes(classes, multilabel, ignore_index)
    mask, _, problems = _load_mask(mask_paths, classes, multilabel, ignore_index)
    if problems:
        raise DataError.of(problems[0])
    assert mask is not None
    return mask


def _read_array(path: Path, as_mask: bool) -> np.ndarray:
    """The pixels of a file as stored: ``(H, W)`` or ``(H, W, C)``."""
    if not path.is_file():
        raise DataError.of(DataProblem(
            "unreadable", path, "the file does not exist (or is not a file)",
            "check the path; a dataset's files must stay in place while it is used"))
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            return _read_tiff(path)
        return _read_with_pillow(path, as_mask)
    except DataError:
        raise
    except Exception as error:  # Pillow and tifffile raise many types for a broken file
        raise DataError.of(DataProblem(
            "unreadable", path, f"cannot be read ({type(error).__name__}: {error})",
            "re-export the file as PNG or TIFF, or move it out of the dataset")) from error


def _read_with_pillow(path: Path, as_mask: bool) -> np.ndarray:
    with Image.open(path) as image:
        image.load()
        mode = image.mode
        if mode == "P" and not as_mask:  # a palette image: its colours are the pixels
            has_alpha = "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
        elif mode == "PA" and not as_mask:
            image = image.convert("RGBA")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        array = np.asarray(image)
    if array.dtype.byteorder == ">":  # "I;16B"
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype == np.int32 and array.size and array.min() >= 0 and array.max() <= 65535:
        array = array.astype(np.uint16)  # mode "I" holding 16-bit values
    return array


def _read_tiff(path: Path) -> np.ndarray:
    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        array = series.asarray()
        axes = series.axes
    # drop axes of length 1 other than the image plane
    keep = [i for i, axis in enumerate(axes) if axis in "YX" or array.shape[i] != 1]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if axes == "YX":
        return array
    if len(axes) == 3 and axes[:2] == "YX":  # samples last: (H, W, C)
        return array
    if len(axes) == 3 and axes[1:] == "YX":  # planar samples or pages: (C, H, W)
        return np.moveaxis(array, 0, -1)
    raise DataError.of(DataProblem(
        "unreadable", path, f"is a TIFF with axes {axes!r} (shape {array.shape}); one 2-D "
        f"image with channels is expected",
        "write (H, W, C) arrays with tifffile.imwrite(path, array, photometric='minisblack', "
        "planarconfig='contig'), or one page per channel"))


def _convert_channels(array: np.ndarray, channels: int, path: Path) -> np.ndarray:
    have = array.shape[2]
    if have == 1:
        return np.repeat(array, channels, axis=2)
    if (have, channels) in ((4, 3), (2, 1)):  # drop alpha
        return array[:, :, :channels]
    if have in (3, 4) and channels == 1:  # luma (ITU-R BT.601)
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float64)
        luma = array[:, :, :3].astype(np.float64) @ weights
        if np.issubdtype(array.dtype, np.integer):
            luma = np.rint(luma)
        return luma.astype(array.dtype)[:, :, None]
    raise DataError.of(DataProblem(
        "channels", path, f"has {have} channels, which cannot be converted to {channels}",
        f"convert the file to {channels} channel(s), or use channels={have}"))


def _check_classes(classes: int, multilabel: bool, ignore_index: int | None) -> None:
    if isinstance(classes, bool) or not isinstance(classes, int):
        raise InvalidOptionError(f"classes must be an int, got {classes!r}")
    if multilabel:
        if classes < 1:
            raise InvalidOptionError(
                f"classes must be at least 1 for multi-label masks (one mask per label), got "
                f"{classes}")
        if ignore_index is not None:
            raise InvalidOptionError(
                "ignore_index is for multi-class masks; multi-label masks hold 0/1 per label")
        return
    if classes < 2:
        raise InvalidOptionError(
            f"classes must be at least 2 (background and one class; binary masks are "
            f"classes=2), got {classes}")
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise InvalidOptionError(f"ignore_index must be an int or None, got {ignore_index!r}")
        if 0 <= ignore_index < classes:
            raise InvalidOptionError(
                f"ignore_index={ignore_index} is one of the classes 0..{classes - 1}; use a "
                f"value outside them, such as 255")


# -- masks -----------------------------------------------------------------------------------
def _load_mask(
    paths: tuple[Path, ...], classes: int, multilabel: bool, ignore_index: int | None
) -> tuple[np.ndarray | None, np.ndarray | None, list[DataProblem]]:
    """The mask, the pixel count per class (multi-class) or per label, and its problems."""
    if not multilabel:
        return _load_class_mask(paths[0], classes, ignore_index)
    if len(paths) == 1:
        return _load_label_tiff(paths[0], classes)
    return _load_label_pngs(paths, classes)


def _read_mask_array(path: Path) -> np.ndarray | DataProblem:
    """The pixels of the mask file ``path`` as stored, or the problem that kept them unread."""
    try:
        return _read_array(path, as_mask=True)
    except DataError as error:
        assert error.problem is not None
        return error.problem


def _load_class_mask(
    path: Path, classes: int, ignore_index: int | None
) -> tuple[np.ndarray | None, np.ndarray | None, list[DataProblem]]:
    array = _read_mask_array(path)
    if isinstance(array, DataProblem):
        return None, None, [array]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3:
        return None, None, [DataProblem(
            "mask-channels", path, f"has {array.shape[2]} channels; a mask holds one class "
            f"index per pixel",
            "save it as a single-channel (grayscale) or palette PNG of class indices "
            f"0..{classes - 1}; a colour-coded mask must be converted to indices first")]
    values, problem = _integral_values(array, path)
    if problem is not None:
        return None, None, [problem]
    assert values is not None
    present = _present_values(values)
    if classes == 2 and ignore_index != 255 and set(present.tolist()) <= {0, 255}:
        values = (values == 255).astype(np.int64)  # a 0/255 binary mask
        present = _present_values(values)
    allowed = (present >= 0) & (present < classes)
    if ignore_index is not None:
        allowed |= present == ignore_index
    bad = present[~allowed]
    if bad.size:
        return None, None, [_class_values_problem(path, bad, classes, ignore_index)]
    counts = np.bincount(values[values != ignore_index] if ignore_index is not None
                         else values.ravel(), minlength=classes)[:classes]
    return values.astype(np.int64, copy=False), counts, []


def _integral_values(array: np.ndarray, path: Path) -> tuple[np.ndarray | None, DataProblem | None]:
    if array.dtype == np.bool_:
        return array.astype(np.int64), None
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64), None
    if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(
            array == np.round(array)):
        return array.astype(np.int64), None
    return None, DataProblem(
        "class-values", path, f"holds non-integer values (dtype {array.dtype})",
        "save class indices as an integer image (8-bit grayscale or palette PNG)")


def _present_values(values: np.ndarray) -> np.ndarray:
    if values.size and values.min() >= 0 and values.max() <= 65535:
        return np.flatnonzero(np.bincount(values.ravel()))
    return np.unique(values)


def _class_values_problem(path: Path, bad: np.ndarray, classes: int,
                          ignore_index: int | None) -> DataProblem:
    listed = ", ".join(str(v) for v in bad[:_LISTED_VALUES].tolist())
    if bad.size > _LISTED_VALUES:
        listed += f", ... ({bad.size} values)"
    fixes = []
    if bad.min() >= 0:
        needed = int(bad.max()) + 1
        fixes.append(f"pass classes={needed} (--classes {needed}) if these are classes")
    if ignore_index is None and 255 in bad.tolist():
        fixes.append("ignore_index=255 (--ignore-index 255) if 255 marks pixels to ignore")
    fixes.append(f"rewrite the mask with values 0..{classes - 1}")
    return DataProblem(
        "class-values", path,
        f"has values {listed} outside the classes 0..{classes - 1} (classes={classes})",
        ", or ".join(fixes))


def _binary_label(array: np.ndarray, path: Path) -> tuple[np.ndarray | None, DataProblem | None]:
    values, problem = _integral_values(array, path)
    if problem is not None:
        return None, DataProblem("label-values", path, problem.message,
                                 "save each label as 0/1 or 0/255")
    assert values is not None
    present = set(_present_values(values).tolist())
    if present <= {0, 1} or present <= {0, 255}:
        return (values > 0).astype(np.uint8), None
    listed = ", ".join(str(v) for v in sorted(present)[:_LISTED_VALUES])
    return None, DataProblem(
        "label-values", path, f"has values {listed}; a multi-label mask holds 0/1 or 0/255 "
        "per label", "threshold the mask (foreground 1 or 255, background 0)")


def _load_label_pngs(
    paths: tuple[Path, ...], classes: int
) -> tuple[np.ndarray | None, np.ndarray | None, list[DataProblem]]:
    planes, problems = [], []
    for path in paths:
        array = _read_mask_array(path)
        if isinstance(array, DataProblem):
            problems.append(array)
            continue
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim == 3:
            problems.append(DataProblem(
                "mask-channels", path, f"has {array.shape[2]} channels; a per-label mask has "
                "one", "save it as a single-channel PNG of 0/1 or 0/255"))
            continue
        plane, problem = _binary_label(array, path)
        if problem is not None:
            problems.append(problem)
            continue
        planes.append((path, plane))
    shapes = {plane.shape for _, plane in planes}
    if len(shapes) > 1:
        sizes = ", ".join(f"{p.name} {_size(a.shape)}" for p, a in planes)
        problems.append(DataProblem(
            "size-mismatch", paths[0].parent, f"per-label masks of different sizes ({sizes})",
            "make every label mask the size of the image"))
    if problems:
        return None, None, problems
    stacked = np.stack([plane for _, plane in planes])
    return stacked, stacked.reshape(len(planes), -1).sum(axis=1, dtype=np.int64), []


def _load_label_tiff(
    path: Path, classes: int
) -> tuple[np.ndarray | None, np.ndarray | None, list[DataProblem]]:
    array = _read_mask_array(path)
    if isinstance(array, DataProblem):
        return None, None, [array]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] != classes:
        return None, None, [DataProblem(
            "mask-channels", path, f"has {array.shape[2]} channel(s), but there are {classes} "
            "labels", f"write one channel per label (classes={array.shape[2]} if that is "
            "the number of labels)")]
    plane, problem = _binary_label(array, path)
    if problem is not None:
        return None, None, [problem]
    assert plane is not None
    stacked = np.ascontiguousarray(plane.transpose(2, 0, 1))
    return stacked, stacked.reshape(classes, -1).sum(axis=1, dtype=np.int64), []


def _size(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


# -- the folder: finding samples -------------------------------------------------------------
def _files(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def find_samples(
    root: str | Path, classes: int, *, multilabel: bool = False
) -> tuple[list[Sample], list[DataProblem]]:
    """Pair images and masks by stem, reading no pixel: the samples and the problems found.

    Problems: a missing folder, no image, unsupported or duplicate files, an image without
    a mask, a mask without an image, a JPEG mask, missing per-label files.
    """
    root = Path(root)
    images_dir, masks_dir = root / IMAGES_DIR, root / MASKS_DIR
    problems: list[DataProblem] = []
    if not root.is_dir():
        return [], [DataProblem("missing-folder", root, "the dataset folder does not exist",
                                "check the path (run `segcore data synth DIR` for a "
                                "synthetic dataset)")]
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            problems.append(DataProblem(
                "missing-folder", folder, f"no '{folder.name}' folder",
                f"put the images in {IMAGES_DIR}/ and the masks in {MASKS_DIR}/, with "
                "matching file names"))
    if problems:
        return [], problems

    images = _by_stem(_files(images_dir), IMAGE_SUFFIXES, "image", problems)
    if not images and not problems:
        problems.append(DataProblem(
            "empty", images_dir, "holds no image",
            f"add images ({', '.join(IMAGE_SUFFIXES)}) with masks of the same name in "
            f"{MASKS_DIR}/"))
    if multilabel:
        masks = _label_masks(_files(masks_dir), classes, problems)
    else:
        masks = _class_masks(_files(masks_dir), problems)

    samples = []
    for stem, image_path in images.items():
        if stem in masks:
            if masks[stem]:  # an empty tuple: a mask with its own problem (reported already)
                samples.append(Sample(stem, image_path, masks[stem]))
            continue
        expected = (f"{MASKS_DIR}/{stem}.png" if not multilabel else
                    f"{MASKS_DIR}/{stem}/0.png..{classes - 1}.png or {MASKS_DIR}/{stem}.tif")
        problems.append(DataProblem(
            "missing-mask", image_path, "has no mask",
            f"add {expected}, or move the image out of {IMAGES_DIR}/"))
    for stem in sorted(set(masks) - set(images)):
        where = masks[stem][0] if masks[stem] else _mask_entry(masks_dir, stem)
        problems.append(DataProblem(
            "orphan-mask", where, "has no image",
            f"add {IMAGES_DIR}/{stem}.png (same stem), rename it to match its image, or "
            f"move it out of {MASKS_DIR}/"))
    return samples, problems


def _mask_entry(masks_dir: Path, stem: str) -> Path:
    """The file or folder of ``masks_dir`` that is the mask of ``stem``."""
    if (masks_dir / stem).is_dir():
        return masks_dir / stem
    return next((entry for entry in _files(masks_dir) if entry.stem == stem), masks_dir / stem)


def _by_stem(entries: Iterable[Path], suffixes: Sequence[str], what: str,
             problems: list[DataProblem], fix: str | None = None) -> dict[str, Path]:
    found: dict[str, list[Path]] = {}
    for entry in entries:
        if entry.is_dir() or entry.suffix.lower() not in suffixes:
            problems.append(_unsupported(entry, what, suffixes, fix))
            continue
        found.setdefault(entry.stem, []).append(entry)
    result = {}
    for stem, paths in found.items():
        if len(paths) > 1:
            problems.append(DataProblem(
                "duplicate-stem", paths[0].parent / stem,
                f"{len(paths)} {what}s share the name {stem!r} "
                f"({', '.join(p.name for p in paths)})", "keep one of them"))
        result[stem] = paths[0]
    return result


def _unsupported(entry: Path, what: str, suffixes: Sequence[str],
                 fix: str | None = None) -> DataProblem:
    kind = "a folder" if entry.is_dir() else "not a supported file"
    article = "an" if what[0] in "aeiou" else "a"
    return DataProblem(
        "unsupported-file", entry, f"is {kind} ({article} {what} is {', '.join(suffixes)})",
        fix or f"convert it to {suffixes[0].lstrip('.').upper()}, or move it out of "
        f"{entry.parent.name}/")


def _class_masks(entries: list[Path], problems: list[DataProblem]) -> dict[str, tuple[Path, ...]]:
    usable, masks = [], {}
    for entry in entries:
        if entry.is_file() and entry.suffix.lower() in LOSSY_SUFFIXES:
            problems.append(DataProblem(
                "lossy-mask", entry, "is a JPEG; its compression changes class values at edges",
                "save masks as PNG (lossless) from the original labels"))
            masks[entry.stem] = ()  # its image is not reported as missing a mask
        else:
            usable.append(entry)
    for stem, path in _by_stem(usable, MASK_SUFFIXES, "mask", problems).items():
        masks[stem] = (path,)
    return masks


def _label_masks(entries: list[Path], labels: int,
                 problems: list[DataProblem]) -> dict[str, tuple[Path, ...]]:
    masks: dict[str, tuple[Path, ...]] = {}
    files = []
    for entry in entries:
        if not entry.is_dir():
            files.append(entry)
            continue
        expected = {f"{k}.png": entry / f"{k}.png" for k in range(labels)}
        present = {child.name: child for child in _files(entry)}
        missing = [name for name in expected if name not in present]
        extra = sorted(set(present) - set(expected))
        if missing:
            problems.append(DataProblem(
                "missing-mask", entry, f"lacks the label mask(s) {', '.join(missing)}",
                f"write one 0/1 or 0/255 PNG per label, 0.png..{labels - 1}.png (an empty "
                "label is an all-zero mask)"))
        for name in extra:
            problems.append(DataProblem(
                "unsupported-file", entry / name,
                f"is not a label mask of this dataset (labels 0.png..{labels - 1}.png)",
                f"remove it, or pass classes={labels + len(extra)} if there are more labels"))
        masks[entry.name] = tuple(expected.values()) if not (missing or extra) else ()
    layout_fix = (f"put one 0/1 PNG per label in {MASKS_DIR}/<stem>/0.png..{labels - 1}.png, "
                  f"or write a {labels}-channel TIFF {MASKS_DIR}/<stem>.tif")
    for stem, path in _by_stem(files, TIFF_SUFFIXES, "multi-label mask", problems,
                               layout_fix).items():
        if stem in masks:
            problems.append(DataProblem(
                "duplicate-stem", path, f"and the folder {stem}/ are both masks of {stem!r}",
                "keep one of them"))
            continue
        masks[stem] = (path,)
    return masks


# -- splits ----------------------------------------------------------------------------------
def read_splits(path: str | Path) -> dict[str, list[str]]:
    """The stems of each split, from ``splits.json`` or a folder of ``<split>.txt`` files.

    ``splits.json``: ``{"train": ["a", "b"], "val": ["c"]}``; a folder: ``train.txt``,
    ``val.txt``... with one stem per line (``#`` starts a comment). Raises ``DataError``
    naming the file when it cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        splits = {}
        for text_file in sorted(path.glob("*.txt")):
            lines = (line.split("#", 1)[0].strip() for line in _read_text(text_file).splitlines())
            splits[text_file.stem] = [line for line in lines if line]
        if not splits:
            raise DataError.of(DataProblem(
                "splits", path, "holds no <split>.txt file",
                "add train.txt and val.txt with one image stem per line"))
        return splits
    try:
        content = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DataError.of(DataProblem(
            "splits", path, f"is not valid JSON ({error})",
            'write {"train": ["stem", ...], "val": ["stem", ...]}')) from None
    if not isinstance(content, dict) or not all(
            isinstance(stems, list) and all(isinstance(stem, str) for stem in stems)
            for stems in content.values()):
        raise DataError.of(DataProblem(
            "splits", path, "must map each split name to a list of image stems",
            'write {"train": ["stem", ...], "val": ["stem", ...]}'))
    return {str(name): list(stems) for name, stems in content.items()}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError.of(DataProblem(
            "splits", path, f"cannot be read ({error})",
            "check the path and that it is a UTF-8 text file")) from None


def split_samples(
    samples: Sequence[Sample], fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED
) -> dict[str, list[Sample]]:
    """A deterministic ``{"train": [...], "val": [...]}`` split, ``fraction`` going to "val".

    A sample's side depends only on its stem and ``seed`` (ranked by a hash of both), so
    adding images keeps most assignments; ``round(fraction * n)`` samples go to "val" (at
    least one when ``fraction > 0`` and there are two samples or more). Order is kept.

    Example: ``split_samples(report.samples, 0.2, seed=1)["val"]``.
    """
    if not 0.0 <= fraction < 1.0:
        raise InvalidOptionError(f"the validation fraction must be in [0, 1), got {fraction}")
    count = len(samples)
    val_count = round(fraction * count)
    if fraction > 0 and val_count == 0 and count >= 2:
        val_count = 1

    def rank(sample: Sample) -> str:
        return hashlib.sha256(f"{seed}/{sample.stem}".encode()).hexdigest()

    val_stems = {sample.stem for sample in sorted(samples, key=rank)[:val_count]}
    return {
        TRAIN_SPLIT: [sample for sample in samples if sample.stem not in val_stems],
        VAL_SPLIT: [sample for sample in samples if sample.stem in val_stems],
    }


def _assign_splits(samples: Sequence[Sample], splits: Mapping[str, list[str]], source: Path,
                   image_stems: set[str]) -> tuple[dict[str, list[Sample]], list[DataProblem]]:
    """The samples of each split; stems of ``image_stems`` without a sample are left out."""
    by_stem = {sample.stem: sample for sample in samples}
    problems: list[DataProblem] = []
    missing_names = [name for name in (TRAIN_SPLIT, VAL_SPLIT) if name not in splits]
    if missing_names:
        problems.append(DataProblem(
            "splits", source, f"has no {' and no '.join(repr(n) for n in missing_names)} split "
            f"(it has {', '.join(repr(n) for n in splits) or 'none'})",
            f"list the image stems of '{TRAIN_SPLIT}' and '{VAL_SPLIT}'"))
    seen: dict[str, str] = {}
    result: dict[str, list[Sample]] = {}
    unknown: list[str] = []
    for name, entries in splits.items():
        result[name] = []
        for entry in entries:
            stem = Path(entry).stem if Path(entry).suffix.lower() in IMAGE_SUFFIXES else entry
            if stem in seen and seen[stem] != name:
                problems.append(DataProblem(
                    "splits", source, f"puts {stem!r} in both {seen[stem]!r} and {name!r}",
                    "keep each image in one split"))
                continue
            if stem in seen:
                continue
            seen[stem] = name
            if stem in by_stem:
                result[name].append(by_stem[stem])
            elif stem not in image_stems:
                unknown.append(stem)
    if unknown:
        listed = ", ".join(repr(stem) for stem in unknown[:_LISTED_VALUES])
        more = f" ({len(unknown)} in all)" if len(unknown) > _LISTED_VALUES else ""
        problems.append(DataProblem(
            "splits", source, f"names images that are not in {IMAGES_DIR}/: {listed}{more}",
            "remove them from the splits file or add the images"))
    return result, problems


# -- scanning ---------------------------------------------------------------------------------
@dataclass
class DataReport:
    """What ``scan`` found in a valid dataset: the samples, their splits, and statistics.

    ``class_pixels[k]``: pixels of class (or label) ``k``; ``class_images[k]``: images where
    it appears; ``mean``/``std``: per channel, of the images scaled to [0, 1].
    """

    root: Path
    classes: int
    multilabel: bool
    ignore_index: int | None
    channels: int
    samples: list[Sample]
    splits: dict[str, list[Sample]]
    splits_source: str
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    dtypes: Counter[str] = field(default_factory=Counter)
    class_pixels: list[int] = field(default_factory=list)
    class_images: list[int] = field(default_factory=list)
    ignored_pixels: int = 0
    total_pixels: int = 0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    class_names: list[str] | None = None

    def dataset(self, split: str | None = None, transform: Transform | None = None
                ) -> SegmentationFolder:
        """The torch dataset of one split (``"train"``, ``"val"``...), or of every sample."""
        if split is None:
            samples = self.samples
        elif split in self.splits:
            samples = self.splits[split]
        else:
            raise InvalidOptionError(
                f"no split {split!r}; the splits ({self.splits_source}) are "
                f"{', '.join(repr(name) for name in self.splits)}")
        return SegmentationFolder(samples, self.classes, multilabel=self.multilabel,
                                  ignore_index=self.ignore_index, channels=self.channels,
                                  transform=transform)

    def summary(self) -> str:
        """A few lines for people: counts, sizes, splits, class histogram, statistics."""
        heights = [h for h, _ in self.sizes]
        widths = [w for _, w in self.sizes]
        kind = "multi-label" if self.multilabel else "multi-class"
        formats = ", ".join(f"{suffix} {n}" for suffix, n in sorted(self.formats.items()))
        dtypes = ", ".join(sorted(self.dtypes))
        lines = [
            f"{self.root}: {len(self.samples)} samples ({formats}), {kind}, "
            f"{self.classes} {'labels' if self.multilabel else 'classes'}",
            f"image sizes (HxW): {min(heights)}..{max(heights)} x {min(widths)}..{max(widths)} "
            f"({len(self.sizes)} distinct); {self.channels} channel(s), {dtypes}",
            "splits (" + self.splits_source + "): " + ", ".join(
                f"{name} {len(samples)}" for name, samples in self.splits.items()),
        ]
        unassigned = len(self.samples) - sum(len(s) for s in self.splits.values())
        if unassigned:
            lines[-1] += f", in no split {unassigned}"
        lines.append("pixels per class:" if not self.multilabel else
                     "positive pixels per label:")
        names = self.class_names or [str(k) for k in range(self.classes)]
        total = max(self.total_pixels, 1)
        for k, name in enumerate(names):
            label = f"{k} {name}" if self.class_names else str(k)
            lines.append(f"  {label:<24} {100.0 * self.class_pixels[k] / total:6.2f}%  "
                         f"in {self.class_images[k]} images")
        if self.ignored_pixels:
            label = f"ignored ({self.ignore_index})"
            lines.append(f"  {label:<24} {100.0 * self.ignored_pixels / total:6.2f}%")
        lines.append("mean per channel (0..1): " + ", ".join(f"{v:.4f}" for v in self.mean))
        lines.append("std per channel (0..1):  " + ", ".join(f"{v:.4f}" for v in self.std))
        return "\n".join(lines)


@dataclass
class _SampleResult:
    sample: Sample
    problems: list[DataProblem]
    size: tuple[int, int] = (0, 0)
    channels: int = 0
    dtype: str = ""
    class_pixels: np.ndarray | None = None
    pixels: int = 0
    ignored: int = 0
    channel_sum: np.ndarray | None = None
    channel_square_sum: np.ndarray | None = None


def scan(
    root: str | Path,
    classes: int,
    *,
    multilabel: bool = False,
    ignore_index: int | None = None,
    channels: int | None = None,
    splits: str | Path | None = None,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
    max_errors: int = MAX_LISTED_PROBLEMS,
    workers: int | None = None,
) -> DataReport:
    """Validate a dataset folder up front, reading every file; report or raise every problem.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        classes: classes of the masks, background included (multi-class), or labels ``K``.
        multilabel: masks are ``K`` binary masks per image (``masks/<stem>/<k>.png`` or a
            ``K``-channel TIFF) rather than class indices.
        ignore_index: a mask value allowed besides the classes (e.g. 255 for borders).
        channels: convert every image to this many channels; ``None``: all images must have
            the same number.
        splits: a ``splits.json`` or a folder of ``<split>.txt`` files; ``None`` uses
            ``root/splits.json`` when it exists, else ``split_samples(fraction, seed)``.
        val_fraction, seed: the fraction split, when there is no splits file.
        max_errors: problems listed in the error's message (all are in ``.problems``).
        workers: threads reading files (default: up to 8).

    Raises ``DataValidationError`` with every problem: missing folders, no image, an image
    without a mask (or the reverse), unreadable files, sizes that differ, mask values out of
    range (listed), colour or JPEG masks, mixed channel counts, bad splits.

    Example: ``report = scan("data", classes=4); print(report.summary())``.
    """
    root = Path(root)
    _check_classes(classes, multilabel, ignore_index)
    if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int)
                                 or channels < 1):
        raise InvalidOptionError(f"channels must be a positive int or None, got {channels!r}")
    samples, problems = find_samples(root, classes, multilabel=multilabel)
    class_names = _class_names(root, classes, problems)

    def check(sample: Sample) -> _SampleResult:
        return _check_sample(sample, classes, multilabel, ignore_index, channels)

    workers = workers or min(8, os.cpu_count() or 1)
    if workers > 1 and len(samples) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(check, samples))
    else:
        results = [check(sample) for sample in samples]
    for result in results:
        problems.extend(result.problems)
    good = [result for result in results if not result.problems]
    common_channels = _common_channels(good, channels, problems)

    usable = [result.sample for result in good]
    if splits is None and (root / SPLITS_FILE).is_file():
        splits = root / SPLITS_FILE
    if splits is not None:
        try:
            split_stems = read_splits(splits)
        except DataError as error:
            assert error.problem is not None
            problems.append(error.problem)
            split_stems = {}
        # images with problems of their own are reported once, not again as unknown stems
        image_stems = ({entry.stem for entry in (root / IMAGES_DIR).iterdir()}
                       if (root / IMAGES_DIR).is_dir() else set())
        split_samples_by_name, split_problems = _assign_splits(
            usable, split_stems, Path(splits), image_stems)
        problems.extend(split_problems)
        splits_source = str(Path(splits).name if Path(splits).parent == root else splits)
    else:
        split_samples_by_name = split_samples(usable, val_fraction, seed)
        splits_source = f"fraction {val_fraction:g} to '{VAL_SPLIT}', seed {seed}"

    if problems:
        raise DataValidationError(root, problems, max_errors)
    return _report(root, classes, multilabel, ignore_index, common_channels, good,
                   split_samples_by_name, splits_source, class_names)


def _check_sample(sample: Sample, classes: int, multilabel: bool, ignore_index: int | None,
                  channels: int | None) -> _SampleResult:
    result = _SampleResult(sample, [])
    image: np.ndarray | None = None
    try:
        image = read_image(sample.image, channels)
    except DataError as error:
        assert error.problem is not None
        result.problems.append(error.problem)
    mask, counts, mask_problems = _load_mask(sample.masks, classes, multilabel, ignore_index)
    result.problems.extend(mask_problems)
    if image is None or mask is None:
        return result
    image_size = image.shape[:2]
    mask_size = mask.shape[-2:]
    if image_size != mask_size:
        mask_path = sample.masks[0] if len(sample.masks) == 1 else sample.masks[0].parent
        result.problems.append(DataProblem(
            "size-mismatch", mask_path,
            f"is {_size(mask_size)} (HxW) but its image {sample.image.name} is "
            f"{_size(image_size)}",
            "make the mask the size of the image (resize labels with nearest-neighbour "
            "interpolation), or re-export the pair"))
        return result
    scaled = image_to_tensor(image).double()
    result.size = (int(image_size[0]), int(image_size[1]))
    result.channels = image.shape[2]
    result.dtype = str(image.dtype)
    result.class_pixels = counts
    result.pixels = image_size[0] * image_size[1]
    if ignore_index is not None:
        result.ignored = int((mask == ignore_index).sum())
    result.channel_sum = scaled.sum(dim=(1, 2)).numpy()
    result.channel_square_sum = (scaled * scaled).sum(dim=(1, 2)).numpy()
    return result


def _common_channels(results: Sequence[_SampleResult], channels: int | None,
                     problems: list[DataProblem]) -> int:
    counts = Counter(result.channels for result in results)
    if channels is not None or len(counts) <= 1:
        return channels if channels is not None else next(iter(counts), 3)
    usual, _ = counts.most_common(1)[0]
    for result in results:
        if result.channels != usual:
            problems.append(DataProblem(
                "channels", result.sample.image,
                f"has {result.channels} channel(s), most images have {usual}",
                f"pass channels={usual} (--channels {usual}) to convert every image, or convert "
                "the file"))
    return usual


def _class_names(root: Path, classes: int, problems: list[DataProblem]) -> list[str] | None:
    names = read_class_names(root)
    if names is not None and len(names) != classes:
        problems.append(DataProblem(
            "classes-file", root / CLASSES_FILE,
            f"names {len(names)} classes but classes={classes}",
            f"pass classes={len(names)} (--classes {len(names)}), or fix {CLASSES_FILE} "
            "(one name per line)"))
        return None
    return names


def read_class_names(root: str | Path) -> list[str] | None:
    """The names in ``root/classes.txt`` (one per line, index order), or ``None``."""
    path = Path(root) / CLASSES_FILE
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def resolve_class_count(root: str | Path, classes: int | None, how_to_set: str) -> int:
    """``classes`` if given, else the number of names in ``root/classes.txt``.

    Raises ``InvalidOptionError`` starting with ``how_to_set`` (how to pass the count) when
    neither is there.
    """
    if classes is not None:
        return classes
    names = read_class_names(root)
    if names is None:
        raise InvalidOptionError(f"{how_to_set}: {Path(root) / CLASSES_FILE} does not exist")
    return len(names)


def _report(root: Path, classes: int, multilabel: bool, ignore_index: int | None,
            channels: int, results: Sequence[_SampleResult],
            splits: dict[str, list[Sample]], splits_source: str,
            class_names: list[str] | None) -> DataReport:
    class_pixels = np.zeros(classes, dtype=np.int64)
    class_images = np.zeros(classes, dtype=np.int64)
    channel_sum = np.zeros(channels)
    channel_square_sum = np.zeros(channels)
    pixels = 0
    report = DataReport(root, classes, multilabel, ignore_index, channels,
                        [result.sample for result in results], splits, splits_source,
                        class_names=class_names)
    for result in results:
        assert result.class_pixels is not None and result.channel_sum is not None
        assert result.channel_square_sum is not None
        class_pixels += result.class_pixels
        class_images += result.class_pixels > 0
        channel_sum += result.channel_sum
        channel_square_sum += result.channel_square_sum
        pixels += result.pixels
        report.ignored_pixels += result.ignored
        report.sizes[result.size] += 1
        report.formats[result.sample.image.suffix.lower()] += 1
        report.dtypes[result.dtype] += 1
    report.total_pixels = pixels
    report.class_pixels = class_pixels.tolist()
    report.class_images = class_images.tolist()
    mean = channel_sum / max(pixels, 1)
    variance = np.maximum(channel_square_sum / max(pixels, 1) - mean * mean, 0.0)
    report.mean = tuple(float(v) for v in mean)
    report.std = tuple(float(v) for v in np.sqrt(variance))
    return report


# -- the torch dataset -------------------------------------------------------------------------
class SegmentationFolder(torch.utils.data.Dataset):
    """Image/mask pairs as tensors: ``(image (C, H, W) float32 in [0, 1], mask)``.

    The mask is ``(H, W)`` int64 class indices, or ``(K, H, W)`` float32 of 0/1 when
    ``multilabel``. ``transform(image, mask)`` (e.g. ``build_train_transform()``) is applied
    last. Build it from ``scan(...).dataset("train")`` so the files were checked up front; a
    file that breaks later raises ``DataError`` naming it.

    Example::

        dataset = SegmentationFolder(report.samples, classes=4)
        image, mask = dataset[0]      # (3, H, W) float32, (H, W) int64
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        classes: int,
        *,
        multilabel: bool = False,
        ignore_index: int | None = None,
        channels: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        _check_classes(classes, multilabel, ignore_index)
        self.samples = list(samples)
        self.classes = classes
        self.multilabel = multilabel
        self.ignore_index = ignore_index
        self.channels = channels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.samples[index]
        image = read_image(sample.image, self.channels)
        mask = read_mask(sample.masks, self.classes, multilabel=self.multilabel,
                         ignore_index=self.ignore_index)
        if image.shape[:2] != mask.shape[-2:]:
            raise DataError.of(DataProblem(
                "size-mismatch", sample.masks[0],
                f"is {_size(mask.shape[-2:])} (HxW) but its image {sample.image.name} is "
                f"{_size(image.shape[:2])}", "make the mask the size of the image"))
        image_tensor = image_to_tensor(image)
        mask_tensor = (torch.from_numpy(mask).float() if self.multilabel
                       else torch.from_numpy(mask))
        if self.transform is not None:
            image_tensor, mask_tensor = self.transform(image_tensor, mask_tensor)
        return image_tensor, mask_tensor

    def __repr__(self) -> str:
        kind = "multilabel" if self.multilabel else "multiclass"
        return f"SegmentationFolder({len(self)} samples, {kind}, classes={self.classes})"
