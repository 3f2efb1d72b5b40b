"""The ``segcore predict`` command: masks (and probability maps) for images of any size.

    segcore predict MODEL_DIR INPUT OUT [--tile 512] [--overlap 0.25] [--batch-size 4]
                    [--tta hflip,vflip] [--scales 0.75,1,1.25] [--probabilities png16|tiff]
                    [--device cpu] [--no-optimize]

MODEL_DIR is a ``save_pretrained`` folder (``segcore.from_pretrained``; ``RUN/best`` of a
training run), INPUT an image (PNG, JPEG, TIFF) or a folder of them, OUT a folder that
receives ``STEM.png`` palette masks and, with ``--probabilities``, ``probabilities/STEM/k.png``
(16-bit) or ``probabilities/STEM.tif``.

Normalisation: the images are normalised as in training. ``segcore train`` writes
``normalization.json`` (``mean``, ``std``, ``input_space``, ``input_range``) next to the best
model, and it is used (read as ``segcore evaluate`` reads it); a folder without it (saved by
hand, or by SMP) gets ImageNet's mean and std, the default of ``resolve_normalization``.

This module is imported each time ``segcore`` starts: it imports torch and the model code
only when the command runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from segcore.errors import InvalidOptionError
from segcore_train.layout import IMAGE_SUFFIXES


def configure_predict(
        parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace, TextIO], int]:
    """Add ``segcore predict``'s arguments to ``parser``; returns the handler."""
    parser.description = (
        "Predict class masks for images of any size: sliding windows with overlap and "
        "Gaussian blending, optional test-time augmentation, written as palette PNGs.")
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR",
                        help="a save_pretrained folder (e.g. RUN/best)")
    parser.add_argument("input", type=Path, metavar="INPUT",
                        help="an image (PNG, JPEG, TIFF) or a folder of images")
    parser.add_argument("out", type=Path, metavar="OUT", help="the folder for the masks")
    parser.add_argument("--tile", type=int, default=512, help="window size (default 512)")
    parser.add_argument("--overlap", type=float, default=0.25,
                        help="fraction of a window shared with its neighbour (default 0.25)")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="windows per forward pass (default 4)")
    parser.add_argument("--tta", default=None,
                        help="test-time augmentation: hflip, vflip, hvflip, rot90, rot270, "
                             "or the presets flips, d4 (comma-separated)")
    parser.add_argument("--scales", default="1",
                        help="comma-separated resize factors averaged with the TTA "
                             "(default 1)")
    parser.add_argument("--probabilities", choices=("png16", "tiff"), default=None,
                        help="also write probability maps (16-bit PNG per class, or a TIFF)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--no-optimize", action="store_true",
                        help="run the model as loaded, without segcore.optimize_for_inference")
    return run_predict


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidOptionError(
            f"--scales must be comma-separated numbers such as 0.75,1,1.25, got {text!r}"
        ) from None


def input_images(path: Path) -> list[Path]:
    """The images to predict: ``path`` itself, or the images of the folder ``path``."""
    from segcore_train.errors import DataError, DataProblem

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError.of(DataProblem(
            "missing-folder", path, "does not exist",
            "pass an image file or a folder of PNG, JPEG or TIFF images"))
    images = sorted(entry for entry in path.iterdir()
                    if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError.of(DataProblem(
            "empty", path, f"holds no image ({', '.join(IMAGE_SUFFIXES)})",
            "pass a folder of images, or one image file"))
    stems: dict[str, Path] = {}
    for image in images:
        if image.stem in stems:
            raise DataError.of(DataProblem(
                "duplicate-stem", image, f"has the same stem as {stems[image.stem].name}: "
                f"both would write {image.stem}.png", "rename one of them"))
        stems[image.stem] = image
    return images


def run_predict(arguments: argparse.Namespace, out: TextIO) -> int:
    """Predict every input image; returns the exit status."""
    import segcore
    from segcore_train.evaluate_cli import load_normalization
    from segcore_train.predict import parse_tta, predict_file

    scales = _scales(arguments.scales)
    parse_tta(arguments.tta)  # an unknown name fails before the model loads
    images = input_images(arguments.input)
    model = segcore.from_pretrained(arguments.model_dir)
    try:
        model = model.to(arguments.device)
    except (RuntimeError, ValueError, AssertionError) as error:  # no CUDA: AssertionError
        raise InvalidOptionError(
            f"--device {arguments.device!r} cannot be used ({error}); use cpu, cuda, "
            f"cuda:1, mps...") from None
    channels = int(model.config["in_channels"])
    normalization = load_normalization(arguments.model_dir, channels)
    runner = model if arguments.no_optimize else segcore.optimize_for_inference(model)
    print(f"model {model.name} ({model.config['classes']} classes) from "
          f"{arguments.model_dir}; normalisation: {normalization.source}", file=out)
    arguments.out.mkdir(parents=True, exist_ok=True)
    for image in images:
        started = time.perf_counter()
        written = predict_file(
            runner, image, arguments.out / f"{image.stem}.png",
            channels=channels, tile=arguments.tile, overlap=arguments.overlap,
            batch_size=arguments.batch_size, tta=arguments.tta, scales=scales,
            device=arguments.device, normalization=normalization,
            probabilities=arguments.probabilities)
        print(f"{image.name} -> {written} ({time.perf_counter() - started:.1f} s)", file=out)
    return 0

