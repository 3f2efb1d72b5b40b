"""The ``segcore data`` command: ``synth`` writes the synthetic dataset, ``check`` validates one.

    segcore data synth DIR [--count N] [--size S] [--min-size M] [--seed K] [--classes C]
                           [--overwrite]
    segcore data check DIR [--classes C] [--multilabel] [--ignore-index V] [--channels N]
                           [--splits PATH] [--val-fraction F] [--seed K] [--max-errors N]

``check`` prints a summary (counts, sizes, splits, class histogram, mean/std) and exits with
status 0, or lists every problem and exits with status 1. This module is imported each time
``segcore`` starts: it imports the data code only when a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from segcore_train import layout


def configure_data(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace, TextIO], int]:
    """Add the ``synth`` and ``check`` actions to ``segcore data``; returns the handler."""
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION", required=True)

    synth = actions.add_parser(
        "synth", help="write the deterministic synthetic dataset (shapes on textures)",
        description="Write a synthetic segmentation dataset: textured backgrounds, overlapping "
                    "shapes (one class each), blur, noise, varied sizes. The same arguments "
                    "write byte-identical files.")
    synth.add_argument("directory", type=Path, help="where to write images/, masks/ ...")
    synth.add_argument("--count", type=int, default=layout.SYNTH_COUNT,
                       help=f"number of images (default {layout.SYNTH_COUNT})")
    synth.add_argument("--size", type=int, default=layout.SYNTH_SIZE,
                       help="largest height and width; each is drawn in [M, S] "
                            f"(default {layout.SYNTH_SIZE})")
    synth.add_argument("--min-size", type=int, default=None,
                       help="smallest height and width M (default 3/4 of S; S gives images "
                            "of one size)")
    synth.add_argument("--seed", type=int, default=layout.SYNTH_SEED,
                       help=f"which dataset (default {layout.SYNTH_SEED})")
    synth.add_argument("--classes", type=int, default=layout.SYNTH_CLASSES,
                       help=f"background plus C-1 shapes, 2..{layout.SYNTH_MAX_CLASSES} "
                            f"(default {layout.SYNTH_CLASSES})")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace the synthetic files of an earlier run in DIR")
    synth.set_defaults(data_handler=_synth)

    check = actions.add_parser(
        "check", help="validate a dataset folder and summarise it",
        description="Read every image and mask of DIR (images/, masks/), report every "
                    "problem with its file and fix (exit status 1), or print a summary.")
    check.add_argument("directory", type=Path, help="the folder holding images/ and masks/")
    check.add_argument("--classes", type=int, default=None,
                       help="classes including background (multi-label: labels); default: "
                            f"the number of names in DIR/{layout.CLASSES_FILE}")
    check.add_argument("--multilabel", action="store_true",
                       help="masks are one binary mask per label (masks/STEM/K.png or a "
                            "K-channel TIFF)")
    check.add_argument("--ignore-index", type=int, default=None,
                       help="a mask value to allow besides the classes (e.g. 255)")
    check.add_argument("--channels", type=int, default=None,
                       help="convert images to this many channels (default: all must agree)")
    check.add_argument("--splits", type=Path, default=None,
                       help=f"a splits JSON or a folder of SPLIT.txt files (default: "
                            f"DIR/{layout.SPLITS_FILE} if present)")
    check.add_argument("--val-fraction", type=float, default=layout.VAL_FRACTION,
                       help="fraction for 'val' when there is no splits file "
                            f"(default {layout.VAL_FRACTION})")
    check.add_argument("--seed", type=int, default=layout.SPLIT_SEED,
                       help=f"seed of that split (default {layout.SPLIT_SEED})")
    check.add_argument("--max-errors", type=int, default=layout.MAX_LISTED_PROBLEMS,
                       help=f"problems listed (default {layout.MAX_LISTED_PROBLEMS})")
    check.set_defaults(data_handler=_check)
    return run_data


def run_data(arguments: argparse.Namespace, out: TextIO) -> int:
    """Run the chosen action; returns the exit status."""
    handler: Callable[[argparse.Namespace, TextIO], int] = arguments.data_handler
    return handler(arguments, out)


def _synth(arguments: argparse.Namespace, out: TextIO) -> int:
    from segcore_train.synth import SHAPES, write_synthetic_dataset

    samples = write_synthetic_dataset(
        arguments.directory, count=arguments.count, size=arguments.size,
        classes=arguments.classes, seed=arguments.seed, min_size=arguments.min_size,
        overwrite=arguments.overwrite)
    shapes = ", ".join(SHAPES[: arguments.classes - 1])
    print(f"wrote {len(samples)} images and masks to {arguments.directory} "
          f"(classes: background, {shapes}; seed {arguments.seed})", file=out)
    print(f"check it with: segcore data check {arguments.directory}", file=out)
    return 0


def _check(arguments: argparse.Namespace, out: TextIO) -> int:
    from segcore_train.data import resolve_class_count, scan
    from segcore_train.errors import DataValidationError

    classes = resolve_class_count(
        arguments.directory, arguments.classes,
        "pass --classes (the number of classes, background included; labels for --multilabel)")
    try:
        report = scan(arguments.directory, classes, multilabel=arguments.multilabel,
                      ignore_index=arguments.ignore_index, channels=arguments.channels,
                      splits=arguments.splits, val_fraction=arguments.val_fraction,
                      seed=arguments.seed, max_errors=arguments.max_errors)
    except DataValidationError as error:
        print(str(error), file=out)
        return 1
    print(report.summary(), file=out)
    print("no problem found", file=out)
    return 0
