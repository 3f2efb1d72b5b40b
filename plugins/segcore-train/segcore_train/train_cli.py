"""The ``segcore train`` command.

    segcore train CONFIG [--set SECTION.KEY=VALUE ...] [--run-dir DIR]
    segcore train --resume RUN [CONFIG] [--set ...]
    torchrun --nproc-per-node N -m segcore train CONFIG      (data-parallel; batch per process)

CONFIG is a TOML file (see docs/training.md); ``--set`` overrides any key, the value read as
TOML and otherwise as a string (``--set model.encoder=resnet34 --set train.epochs=20``).
``--resume RUN`` continues a run from ``RUN/last.pt``, with ``RUN/config.toml`` unless CONFIG
is given. This module is imported each time ``segcore`` starts: it imports torch and the
training code only when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from segcore.errors import InvalidOptionError


def configure_train(parser: argparse.ArgumentParser
                    ) -> Callable[[argparse.Namespace, TextIO], int]:
    """Add the arguments of ``segcore train``; returns the handler."""
    parser.description = (
        "Train a segmentation model on an image/mask folder as a TOML configuration says. "
        "Writes the run folder: config.toml, metrics.csv, curves.png, predictions.png, "
        "confusion.png, last.pt, best.pt and best/ (segcore.from_pretrained). Under torchrun "
        "the run is data-parallel and train.batch_size is per process.")
    parser.add_argument("config", type=Path, nargs="?", default=None,
                        help="the TOML configuration (optional with --resume: the run's "
                             "config.toml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="override a key, e.g. --set train.epochs=20 (repeatable)")
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN",
                        help="continue the run in folder RUN from its last.pt")
    parser.add_argument("--run-dir", type=Path, default=None, metavar="DIR",
                        help="the run folder (same as --set output.run_dir=DIR)")
    return run_train


def run_train(arguments: argparse.Namespace, out: TextIO) -> int:
    """Load the configuration and train; returns the exit status."""
    from segcore_train.config import load_config
    from segcore_train.trainer import resume_config, train

    overrides = list(arguments.overrides)
    if arguments.run_dir is not None:
        if arguments.resume is not None:
            raise InvalidOptionError("--run-dir and --resume both name the run folder; pass "
                                     "only --resume RUN to continue a run")
        overrides.append(f"output.run_dir={_toml_string(str(arguments.run_dir))}")
    if arguments.config is not None:
        config = load_config(arguments.config, overrides)
    elif arguments.resume is not None:
        config = resume_config(arguments.resume, overrides)
    else:
        raise InvalidOptionError("pass a configuration file (segcore train CONFIG), or "
                                 "--resume RUN to continue a run")
    train(config, resume=arguments.resume, out=out)
    return 0


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
