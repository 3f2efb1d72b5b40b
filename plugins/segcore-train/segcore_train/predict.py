"""Prediction of images of any size: sliding windows, Gaussian blending, TTA, streaming to files.

* ``predict_tiled(model, image)`` -> ``(K, H, W)`` probabilities of a ``(C, H, W)`` image;
* ``predict_to_mask(model, image, mask_path)`` / ``predict_file(model, path, mask_path)``
  stream a huge image band by band into a palette PNG mask (and optional probability maps)
  without holding the ``(K, H, W)`` float map.

How an image is predicted:

* An image no larger than ``tile`` in both directions is one window: the model sees it whole
  (the result equals ``model(image)`` turned into probabilities).
* A larger one is cut into windows of ``tile x tile`` (shorter along a side that fits) placed
  every ``tile - round(tile * overlap)`` pixels, the last one flush with the border. Windows
  are batched (``batch_size``) and their **logits** are blended with a Gaussian weight
  (sigma = ``tile / 8``, centre 1, never below ``1e-4``): the centre of a window, which saw
  the most context, counts most. Logits rather than probabilities are blended because
  averaging logits is averaging the evidence of the windows (a window that is sure of a class
  moves the result more than one that is not), and the softmax of the blend is a proper
  distribution again; along a side covered by one window the weight is 1 (no blending).
* Test-time augmentation: every window is also predicted flipped/rotated (``tta``) and
  resized by each factor of ``scales`` (the window is resized bilinearly, predicted, and its
  logits resized back and un-flipped). Each variant is blended on its own, turned into
  probabilities, and the variants are **averaged in probability space**.
* Probabilities: softmax over classes for a multi-class model; sigmoid per channel for a
  one-class model or when ``multilabel=True``. A model built with ``activation="softmax2d"``
  / ``"sigmoid"`` already outputs probabilities: they are blended as they are.

``tta`` names (comma-separated string or a sequence): ``"hflip"`` (left-right), ``"vflip"``
(up-down), ``"hvflip"`` (both = a 180 degree rotation), ``"rot90"``, ``"rot270"``
(quarter turns; any window shape works since the model pads), ``"transpose"``,
``"antitranspose"`` (mirror on a diagonal); presets ``"flips"`` = hflip, vflip, hvflip and
``"d4"`` = all 7 non-identity symmetries of the square. The identity is always included.

Example::

    model = segcore.from_pretrained("runs/best")
    probabilities = predict_tiled(model, image, tile=512, overlap=0.25, tta="hflip,vflip")
    mask = probabilities.argmax(0)                      # (H, W) class indices
    predict_file(model, "huge.tif", "out/huge.png", normalization=resolve_normalization())
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from segcore.errors import InputShapeError, InvalidOptionError
from segcore_train.layout import TIFF_SUFFIXES

#: The largest image (pixels) Pillow opens while predicting. Pillow refuses images above
#: ~179 megapixels by default (a "decompression bomb" guard for untrusted files); prediction
#: exists for huge images, so the limit is raised to 2**31 pixels (46340 x 46340) while a
#: file is read, and restored afterwards.
MAX_IMAGE_PIXELS = 2**31
#: The probability maps' scale: a 16-bit value ``v`` is the probability ``v / 65535``.
PROBABILITY_SCALE = 65535
#: The file a model folder may hold with its input normalisation (``mean``, ``std``,
#: ``input_space``, ``input_range``), read by ``segcore predict``.
NORMALIZATION_FILE = "normalization.json"
#: The probability-map formats: one 16-bit PNG per class, or one multi-page 16-bit TIFF.
PROBABILITY_FORMATS = ("png16", "tiff")

_ACTIVATION_PROBABILITIES = {"sigmoid": True, "softmax": False, "softmax2d": False}
_TTA_NAMES = ("hflip", "vflip", "hvflip", "rot90", "rot270", "transpose", "antitranspose")
_TTA_PRESETS = {
    "flips": ("hflip", "vflip", "hvflip"),
    "d4": ("hflip", "vflip", "hvflip", "rot90", "rot270", "transpose", "antitranspose"),
}
# a symmetry as (flip left-right first?, then rotate k quarter turns counter-clockwise)
_SYMMETRIES = {
    "identity": (False, 0), "hflip": (True, 0), "vflip": (True, 2), "hvflip": (False, 2),
    "rot90": (False, 1), "rot270": (False, 3), "transpose": (True, 1),
    "antitranspose": (True, 3),
}


# -- options ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Variant:
    flip: bool
    turns: int
    scale: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip:
            x = x.flip(-1)
        if self.turns:
            x = torch.rot90(x, self.turns, dims=(-2, -1))
        if self.scale != 1.0:
            size = [max(1, round(n * self.scale)) for n in x.shape[-2:]]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def inverse(self, y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.scale != 1.0:
            rotated = size if self.turns % 2 == 0 else (size[1], size[0])
            y = F.interpolate(y, size=list(rotated), mode="bilinear", align_corners=False)
        if self.turns:
            y = torch.rot90(y, -self.turns, dims=(-2, -1))
        if self.flip:
            y = y.flip(-1)
        return y


def parse_tta(tta: str | Sequence[str] | None) -> list[str]:
    """The symmetry names of ``tta`` (see the module's docstring), identity first.

    Example: ``parse_tta("hflip,vflip") == ["identity", "hflip", "vflip"]``.
    """
    if tta is None:
        return ["identity"]
    items = tta.split(",") if isinstance(tta, str) else list(tta)
    names = ["identity"]
    for item in items:
        if not isinstance(item, str):
            raise InvalidOptionError(f"tta names must be strings, got {item!r}")
        item = item.strip().lower()
        if item in ("", "none", "identity"):
            continue
        expanded = _TTA_PRESETS.get(item, (item,))
        for name in expanded:
            if name not in _SYMMETRIES:
                from segcore.errors import did_you_mean

                known = list(_TTA_NAMES) + list(_TTA_PRESETS)
                raise InvalidOptionError(
                    f"unknown test-time augmentation {item!r}.{did_you_mean(item, known)} "
                    f"Use a comma-separated list of: {', '.join(known)}")
            if name not in names:
                names.append(name)
    return names


def _check_options(tile: Any, overlap: Any, batch_size: Any, scales: Any) -> tuple[float, ...]:
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0:
        raise InvalidOptionError(
            f"tile must be a positive int (the window size in pixels, e.g. 512), got {tile!r}")
    if (isinstance(overlap, bool) or not isinstance(overlap, (int, float))
            or not 0 <= overlap < 1):
        raise InvalidOptionError(
            f"overlap must be a fraction of the tile in [0, 1) (e.g. 0.25), got {overlap!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InvalidOptionError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(scales, (int, float)):
        scales = (scales,)
    try:
        values = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        values = ()
    if not values or not all(math.isfinite(s) and s > 0 for s in values):
        raise InvalidOptionError(
            f"scales must be positive numbers such as (0.75, 1.0, 1.25), got {scales!r}")
    return tuple(dict.fromkeys(values))


def _variants(tta: str | Sequence[str] | None, scales: tuple[float, ...]) -> list[_Variant]:
    return [_Variant(*_SYMMETRIES[name], scale) for scale in scales for name in parse_tta(tta)]


def _tile_starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _gaussian(length: int, blended: bool) -> torch.Tensor:
    if not blended:
        return torch.ones(length)
    sigma = length / 8
    positions = torch.arange(length, dtype=torch.float64) - (length - 1) / 2
    return torch.exp(-(positions**2) / (2 * sigma**2)).clamp_min(1e-4).float()


# -- image sources ---------------------------------------------------------------------------
class _ArraySource:
    """Windows of an image held as a ``(C, H, W)`` tensor or a ``(C, H, W)``/``(H, W, C)``
    array (numpy memmaps included), as float32 in [0, 1] for integer dtypes."""

    def __init__(self, data: Any, channels_last: bool) -> None:
        self.data = data
        self.channels_last = channels_last
        shape = tuple(data.shape)
        if channels_last:
            self.height, self.width, self.channels = shape
        else:
            self.channels, self.height, self.width = shape

    def read(self, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        if self.channels_last:
            window = np.asarray(self.data[y0:y1, x0:x1]).transpose(2, 0, 1)
        else:
            window = self.data[:, y0:y1, x0:x1]
        if isinstance(window, np.ndarray):
            if window.dtype == np.bool_:
                return torch.from_numpy(window.astype(np.float32))
            if np.issubdtype(window.dtype, np.integer):
                scale = np.float32(np.iinfo(window.dtype).max)
                return torch.from_numpy(window.astype(np.float32) / scale)
            return torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))
        if window.dtype == torch.bool:
            return window.float()
        if not window.is_floating_point() and not window.is_complex():
            return window.float() / float(torch.iinfo(window.dtype).max)
        return window.float()


def _as_source(image: Any) -> _ArraySource:
    if isinstance(image, _ArraySource):
        return image
    if isinstance(image, (torch.Tensor, np.ndarray)):
        if image.ndim != 3:
            raise InputShapeError(
                f"the image must be (C, H, W), got shape {tuple(image.shape)}; add a channel "
                f"axis for a grayscale image (image[None]) and pass one image at a time")
        if image.shape[1] < 1 or image.shape[2] < 1:
            raise InputShapeError(f"the image has no pixels: shape {tuple(image.shape)}")
        return _ArraySource(image, channels_last=False)
    raise InputShapeError(
        f"the image must be a (C, H, W) torch.Tensor or numpy array, got "
        f"{type(image).__name__}; read a file with predict_file() or segcore_train.read_image")


@contextlib.contextmanager
def _large_images_allowed() -> Iterator[None]:
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def open_image(path: str | os.PathLike[str], channels: int | None = None) -> _ArraySource:
    """A lazily windowed image file: an uncompressed TIFF is memory-mapped, others are read.

    Pillow reads PNG/JPEG whole (``uint8``: 3 bytes per RGB pixel; the image limit is raised
    to ``MAX_IMAGE_PIXELS``); windows are turned into float32 one batch at a time. Raises
    ``DataError`` naming the file when it cannot be read.
    """
    from segcore_train.data import read_image

    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES and path.is_file():
        mapped = _tiff_memmap(path)
        if mapped is not None and (channels is None or mapped.shape[2] == channels):
            return _ArraySource(mapped, channels_last=True)
    with _large_images_allowed():
        array = read_image(path, channels=channels)
    return _ArraySource(array, channels_last=True)


def _tiff_memmap(path: Path) -> np.ndarray | None:
    """An ``(H, W, C)`` memory map of a contiguous, uncompressed TIFF; ``None`` otherwise."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            axes = series.axes
        if axes not in ("YX", "YXS", "YXC"):
            return None
        mapped = tifffile.memmap(path, mode="r")
    except Exception:  # compressed, tiled or odd files: read_image decodes them
        return None
    if mapped.ndim == 2:
        mapped = mapped[:, :, None]
    return mapped if mapped.ndim == 3 else None


# -- the model -------------------------------------------------------------------------------
def _model_info(model: nn.Module, multilabel: bool | None) -> tuple[int | None, bool, bool]:
    """(in_channels or None, outputs are probabilities already, sigmoid rather than softmax)."""
    config = getattr(model, "config", None)
    config = config if isinstance(config, dict) else {}
    activation = config.get("activation")
    classes = config.get("classes")
    in_channels = config.get("in_channels")
    if activation in (None, "identity"):
        probabilities = False
        sigmoid = bool(multilabel) if multilabel is not None else classes == 1
    elif activation in _ACTIVATION_PROBABILITIES:
        probabilities = True
        sigmoid = _ACTIVATION_PROBABILITIES[activation]
    else:
        raise InvalidOptionError(
            f"the model's output activation is {activation!r}: prediction needs logits "
            f"(activation=None) or probabilities ('sigmoid', 'softmax2d'); rebuild or load "
            f"the model with activation=None")
    return in_channels, probabilities, sigmoid


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


# -- the band loop ---------------------------------------------------------------------------
def iter_predicted_bands(
    model: nn.Module,
    image: Any,
    *,
    tile: int = 512,
    overlap: float = 0.25,
    batch_size: int = 4,
    tta: str | Sequence[str] | None = None,
    scales: Sequence[float] = (1.0,),
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    multilabel: bool | None = None,
    normalization: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(first_row, probabilities (K, rows, W) float32 on the CPU)``, top to bottom.

    The engine of ``predict_tiled`` and ``predict_to_mask`` (same arguments): only the
    accumulators of the rows that a later window still touches are kept, so memory grows
    with ``tile * W``, not ``H * W``.
    """
    scale_values = _check_options(tile, overlap, batch_size, scales)
    variants = _variants(tta, scale_values)
    source = _as_source(image)
    in_channels, outputs_probabilities, sigmoid = _model_info(model, multilabel)
    if in_channels is not None and source.channels != in_channels:
        raise InputShapeError(
            f"the image has {source.channels} channels but the model takes {in_channels}; "
            f"convert the image (read_image(path, channels={in_channels}))")
    device = torch.device(device) if device is not None else _device_of(model)
    if model.training:
        model.eval()
    height, width = source.height, source.width
    tile_h, tile_w = min(tile, height), min(tile, width)
    stride = max(1, tile - round(tile * overlap))
    rows = _tile_starts(height, tile_h, stride)
    columns = _tile_starts(width, tile_w, stride)
    weight = (_gaussian(tile_h, len(rows) > 1)[:, None]
              * _gaussian(tile_w, len(columns) > 1)[None, :]).to(device)
    autocast = (torch.autocast(device.type, dtype=dtype)
                if dtype is not None and dtype != torch.float32 else contextlib.nullcontext())

    base = 0
    sums: torch.Tensor | None = None   # (V, K, rows, W) blended outputs of the open rows
    weights = torch.zeros(0, width, device=device)
    with torch.inference_mode(), autocast:
        for index, top in enumerate(rows):
            bottom = top + tile_h
            if bottom - base > weights.shape[0]:
                extra = bottom - base - weights.shape[0]
                weights = torch.cat([weights, weights.new_zeros(extra, width)])
                if sums is not None:
                    sums = torch.cat([sums, sums.new_zeros(*sums.shape[:2], extra, width)], 2)
            for start in range(0, len(columns), batch_size):
                batch_columns = columns[start:start + batch_size]
                batch = torch.stack([source.read(top, bottom, left, left + tile_w)
                                     for left in batch_columns]).to(device)
                if normalization is not None:
                    batch = normalization(batch)
                for number, variant in enumerate(variants):
                    output = model(variant.forward(batch))
                    if isinstance(output, (tuple, list)):  # (mask, labels) with aux_params
                        output = output[0]
                    output = variant.inverse(output.float(), (tile_h, tile_w))
                    if sums is None:
                        sums = output.new_zeros(len(variants), output.shape[1],
                                                weights.shape[0], width)
                    for slot, left in enumerate(batch_columns):
                        sums[number, :, top - base:bottom - base, left:left + tile_w] += (
                            output[slot] * weight)
                for left in batch_columns:
                    weights[top - base:bottom - base, left:left + tile_w] += weight
            done = (rows[index + 1] if index + 1 < len(rows) else height) - base
            if done <= 0:
                continue
            assert sums is not None
            blended = sums[:, :, :done] / weights[:done]
            if not outputs_probabilities:
                blended = blended.sigmoid() if sigmoid else blended.softmax(1)
            yield base, blended.mean(0).cpu()
            sums, weights = sums[:, :, done:], weights[done:]
            base += done


def predict_tiled(
    model: nn.Module,
    image: torch.Tensor | np.ndarray,
    *,
    tile: int = 512,
    overlap: float = 0.25,
    batch_size: int = 4,
    tta: str | Sequence[str] | None = None,
    scales: Sequence[float] = (1.0,),
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    multilabel: bool | None = None,
    normalization: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-class probabilities ``(K, H, W)`` (float32, CPU) of one image of any size.

    Args:
        model: a segmentation model returning logits ``(N, K, h, w)`` (or ``(mask, labels)``);
            it is switched to eval mode, as ``model.predict`` does.
        image: ``(C, H, W)`` tensor or array, the model's input: float values are used as
            they are; integer ones are scaled to [0, 1] by their dtype's maximum; then
            ``normalization`` (e.g. ``resolve_normalization(...)``) is applied per window.
        tile: window size in pixels; an image no larger than it is predicted whole.
        overlap: fraction of a window shared with its neighbour, in [0, 1).
        batch_size: windows per forward pass.
        tta: test-time augmentation names (``"hflip,vflip"``, ``"flips"``, ``"d4"``...).
        scales: resize factors of every window (``(0.75, 1.0, 1.25)``), averaged with ``tta``.
        device: where the model runs (default: where its parameters are).
        dtype: ``torch.bfloat16`` / ``torch.float16`` runs under autocast; blending is float32.
        multilabel: sigmoid per channel rather than softmax (default: only for 1 class).

    Example::

        probabilities = predict_tiled(model, image, tile=256, tta="hflip")
        mask = probabilities.argmax(0)
    """
    source = _as_source(image)
    result: torch.Tensor | None = None
    for top, band in iter_predicted_bands(
            model, source, tile=tile, overlap=overlap, batch_size=batch_size, tta=tta,
            scales=scales, device=device, dtype=dtype, multilabel=multilabel,
            normalization=normalization):
        if result is None:
            result = band.new_empty(band.shape[0], source.height, source.width)
        result[:, top:top + band.shape[1]] = band
    assert result is not None
    return result


# -- writing ---------------------------------------------------------------------------------
def _palette_bytes(classes: int) -> list[int]:
    from segcore_train.plots import palette

    colours = list(palette(classes))
    flat = [int(value) for colour in colours for value in colour]
    return flat + [0] * (768 - len(flat))


def _probability_path(mask_path: Path, kind: str) -> Path:
    folder = mask_path.parent / "probabilities"
    return folder / (mask_path.stem + (".tif" if kind == "tiff" else ""))


def predict_to_mask(
    model: nn.Module,
    image: Any,
    mask_path: str | os.PathLike[str],
    *,
    probabilities: str | None = None,
    probabilities_path: str | os.PathLike[str] | None = None,
    threshold: float = 0.5,
    **options: Any,
) -> Path:
    """Predict ``image`` band by band and write its mask (and probability maps); returns the
    mask's path.

    Args:
        image: a ``(C, H, W)`` tensor or array, or an image opened with ``open_image``.
        mask_path: the palette PNG written: class indices with ``segcore_train.plots``'s
            palette (class 0 black). One-class models write 0/1 (probability >=
            ``threshold``); multi-label models write a folder ``mask_path`` without suffix
            holding ``k.png`` (0/255) per label, the dataset layout.
        probabilities: ``None``, ``"png16"`` (one 16-bit PNG per class, ``k.png`` in a folder)
            or ``"tiff"`` (one ``(K, H, W)`` uint16 TIFF); a value ``v`` means ``v / 65535``.
        probabilities_path: where they go (default ``probabilities/STEM[.tif]`` next to the
            mask).
        **options: those of ``predict_tiled`` (tile, overlap, batch_size, tta, scales,
            device, dtype, multilabel, normalization).

    Memory: the mask (1 byte per pixel) and the probability maps (a uint16 memory map on disk
    while predicting) are the only full-size buffers.
    """
    import tifffile

    if probabilities is not None and probabilities not in PROBABILITY_FORMATS:
        raise InvalidOptionError(
            f"probabilities must be one of {', '.join(PROBABILITY_FORMATS)} (or None), got "
            f"{probabilities!r}")
    mask_path = Path(mask_path)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    source = _as_source(image)
    height, width = source.height, source.width
    mask: np.ndarray | None = None
    maps: np.ndarray | None = None
    prob_path = (Path(probabilities_path) if probabilities_path is not None
                 else _probability_path(mask_path, probabilities or ""))
    scratch: Path | None = None
    sigmoid = False
    try:
        for top, band in iter_predicted_bands(model, source, **options):
            classes = band.shape[0]
            if mask is None:
                sigmoid = _model_info(model, options.get("multilabel"))[2]
                labels = classes if sigmoid and classes > 1 else 1
                mask = np.zeros((labels, height, width), np.uint8)
                if probabilities == "tiff":
                    prob_path.parent.mkdir(parents=True, exist_ok=True)
                    maps = tifffile.memmap(prob_path, shape=(classes, height, width),
                                           dtype=np.uint16, photometric="minisblack")
                elif probabilities == "png16":
                    handle, name = tempfile.mkstemp(suffix=".probabilities",
                                                    dir=mask_path.parent)
                    os.close(handle)
                    scratch = Path(name)
                    maps = np.memmap(scratch, np.uint16, "w+", shape=(classes, height, width))
            rows = slice(top, top + band.shape[1])
            if sigmoid and classes > 1:
                mask[:, rows] = (band >= threshold).numpy().astype(np.uint8) * 255
            elif sigmoid:
                mask[0, rows] = (band[0] >= threshold).numpy()
            else:
                mask[0, rows] = band.argmax(0).numpy().astype(np.uint8)
            if maps is not None:
                maps[:, rows] = (band * PROBABILITY_SCALE).round_().numpy().astype(np.uint16)
        assert mask is not None
        _write_mask(mask, mask_path, classes, sigmoid)
        if maps is not None:
            if probabilities == "tiff":
                maps.flush()
            else:
                prob_path.mkdir(parents=True, exist_ok=True)
                for number in range(classes):
                    Image.fromarray(np.asarray(maps[number])).save(prob_path / f"{number}.png")
    finally:
        del maps
        if scratch is not None:
            scratch.unlink(missing_ok=True)
    return mask_path if not (sigmoid and classes > 1) else mask_path.with_suffix("")


def _write_mask(mask: np.ndarray, mask_path: Path, classes: int, sigmoid: bool) -> None:
    if sigmoid and classes > 1:
        folder = mask_path.with_suffix("")
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(classes):
            Image.fromarray(mask[number]).save(folder / f"{number}.png")
        return
    shown = 2 if sigmoid else classes
    if shown > 256:
        raise InvalidOptionError(
            f"a palette PNG holds at most 256 classes, the model has {shown}; write the "
            f"probabilities (probabilities='tiff') instead")
    picture = Image.fromarray(mask[0])   # mode "L"; putpalette makes it "P", same indices
    picture.putpalette(_palette_bytes(shown))
    picture.save(mask_path)


def predict_file(
    model: nn.Module,
    path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    *,
    channels: int | None = None,
    **options: Any,
) -> Path:
    """Read an image file (PNG, JPEG, TIFF of any size) and ``predict_to_mask`` it.

    ``channels`` converts the image (default: the model's ``in_channels``); pass
    ``normalization=resolve_normalization(...)`` as training did. Uncompressed TIFFs are
    memory-mapped. Raises ``DataError`` naming the file when it cannot be read.

    Example: ``predict_file(model, "scene.tif", "out/scene.png", tile=512, tta="hflip")``.
    """
    if channels is None:
        config = getattr(model, "config", None)
        channels = config.get("in_channels") if isinstance(config, dict) else None
    source = open_image(path, channels=channels)
    return predict_to_mask(model, source, mask_path, **options)

