"""The ``segcore evaluate`` command: score a saved model on a dataset folder.

    segcore evaluate MODEL_DIR DATA [--split val|train|all|NAME] [--json] [--batch-size N]
                     [--device cpu] [--ignore-index V] [--multilabel] [--tile T]

``MODEL_DIR`` is a folder written by ``save_pretrained`` (a run's ``best/``); ``DATA`` a
dataset folder (``images/``, ``masks/``), checked up front with the model's number of classes;
the class names come from ``DATA/classes.txt`` when present. Images are normalised as
``MODEL_DIR/normalization.json`` says (``mean``, ``std``, ``input_space``, ``input_range``,
written by training), else with ImageNet's mean and std. Prints the table of per-class IoU,
F1, precision and recall (or ``--json``); exit status 0, or 2 with a message for a missing
folder or a dataset that does not fit the model. This module is imported each time
``segcore`` starts: it imports torch and the model code only when the command runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from segcore.errors import InvalidOptionError, WeightsNotFoundError

#: The file of a model folder with its input normalisation (shared with ``segcore predict``).
NORMALIZATION_FILE = "normalization.json"
_SPLIT_ALL = "all"


def configure_evaluate(parser: argparse.ArgumentParser
                       ) -> Callable[[argparse.Namespace, TextIO], int]:
    """Add the arguments of ``segcore evaluate``; returns the handler."""
    parser.description = (
        "Score a saved model (a folder written by save_pretrained, such as a run's best/) on "
        "a dataset folder: per-class IoU, F1, precision and recall, their means and the pixel "
        "accuracy.")
    parser.add_argument("model", type=Path, metavar="MODEL_DIR",
                        help="folder with config.json and model.safetensors")
    parser.add_argument("data", type=Path, metavar="DATA",
                        help="dataset folder holding images/ and masks/")
    parser.add_argument("--split", default="val",
                        help="which split to score: val (default), train, another split of "
                             f"the splits file, or {_SPLIT_ALL!r} for every image")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="images per forward pass (default 4)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--ignore-index", type=int, default=None,
                        help="a mask value whose pixels are left out (e.g. 255)")
    parser.add_argument("--multilabel", action="store_true",
                        help="masks are one binary mask per label (masks/STEM/K.png or a "
                             "K-channel TIFF); a label is positive where sigmoid >= 0.5")
    parser.add_argument("--tile", type=int, default=None,
                        help="predict images larger than TILE pixels with sliding windows")
    return run_evaluate


def run_evaluate(arguments: argparse.Namespace, out: TextIO) -> int:
    """Load the model and the dataset, evaluate, print; returns the exit status."""
    import segcore
    from segcore_train.augment import build_eval_transform
    from segcore_train.data import scan
    from segcore_train.errors import DataError, DataValidationError
    from segcore_train.evaluate import evaluate, resolve_device

    model_dir: Path = arguments.model
    if not model_dir.is_dir():
        raise WeightsNotFoundError(
            f"model folder {str(model_dir)!r} does not exist; pass a folder written by "
            "model.save_pretrained(), such as a training run's best/")
    if not arguments.data.is_dir():
        raise DataError(
            f"dataset folder {str(arguments.data)!r} does not exist; pass the folder that "
            "holds images/ and masks/")
    if arguments.batch_size < 1:
        raise InvalidOptionError(f"--batch-size must be at least 1, got {arguments.batch_size}")
    device = resolve_device(arguments.device)
    model = segcore.from_pretrained(model_dir)
    config = model.config
    outputs = int(config["classes"])
    channels = int(config.get("in_channels", 3))
    multilabel = arguments.multilabel
    classes = outputs if multilabel or outputs > 1 else 2  # one logit: a binary model
    normalization = load_normalization(model_dir, channels)
    try:
        report = scan(arguments.data, classes, multilabel=multilabel,
                      ignore_index=arguments.ignore_index, channels=channels)
    except DataValidationError as error:
        kind = "labels" if multilabel else "classes"
        raise DataError(
            f"the dataset does not fit the model in {model_dir} ({classes} {kind}, "
            f"{channels} input channel(s), from its config.json): {error}",
            error.problem) from None
    split = None if arguments.split == _SPLIT_ALL else arguments.split
    dataset = report.dataset(split, transform=build_eval_transform(normalization))
    if len(dataset) == 0:
        raise DataError(
            f"split {arguments.split!r} of {arguments.data} holds no image; choose another "
            f"with --split ({', '.join(report.splits)} or {_SPLIT_ALL})")
    result = evaluate(model, dataset, classes=classes, batch_size=arguments.batch_size,
                      device=device, ignore_index=arguments.ignore_index,
                      class_names=report.class_names, tile=arguments.tile)
    if arguments.json:
        document: dict[str, Any] = {
            "model": str(model_dir), "data": str(arguments.data), "split": arguments.split,
            "normalization": normalization.source, **result.to_dict()}
        print(json.dumps(document, indent=2), file=out)
    else:
        print(f"{model_dir} on {arguments.data} (split {arguments.split}, {len(dataset)} "
              f"images; normalisation: {normalization.source})", file=out)
        print(result.table(), file=out)
    return 0


def load_normalization(model_dir: Path, channels: int) -> Any:
    """The ``Normalization`` of ``model_dir/normalization.json``, else ImageNet's defaults.

    The file holds ``{"mean": [...], "std": [...], "input_space": "RGB", "input_range":
    [0, 1]}`` (``mean``/``std`` may be ``null``). Raises ``InvalidOptionError`` naming the
    file when it cannot be read or has the wrong channel count.
    """
    from segcore_train.augment import Normalization, resolve_normalization

    path = Path(model_dir) / NORMALIZATION_FILE
    if not path.is_file():
        fallback = resolve_normalization(channels=channels)
        return Normalization(fallback.mean, fallback.std,
                             source=f"ImageNet defaults, no {NORMALIZATION_FILE} in the model "
                                    "folder")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise ValueError("it must hold a JSON object")
        unknown = set(values) - {"mean", "std", "input_space", "input_range", "source"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        statistics = {}
        for key in ("mean", "std"):
            value = values.get(key)
            statistics[key] = None if value is None else tuple(float(v) for v in value)
            if statistics[key] is not None and len(statistics[key]) != channels:
                raise ValueError(f"{key} has {len(statistics[key])} values for a model of "
                                 f"{channels} input channel(s)")
        space = values.get("input_space", "RGB")
        if space not in ("RGB", "BGR"):
            raise ValueError(f"input_space must be 'RGB' or 'BGR', got {space!r}")
        low, high = (float(v) for v in values.get("input_range", (0.0, 1.0)))
    except (OSError, ValueError, TypeError) as error:
        raise InvalidOptionError(
            f"{path} cannot be used: {error}; it holds the model's input normalisation as "
            '{"mean": [...], "std": [...], "input_space": "RGB", "input_range": [0, 1]}; '
            "fix it or delete it to use ImageNet's defaults") from None
    return Normalization(statistics["mean"], statistics["std"], input_space=space,
                         input_range=(low, high), source=str(path))
