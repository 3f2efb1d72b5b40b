"""``segcore count-params ARCHITECTURE [--encoder NAME] [--classes N] [--in-channels N]``.

The ``segcore`` command imports this module (to call ``configure``) every time it starts, so
it imports nothing heavy: the model code is imported by the handler, when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

Handler = Callable[[argparse.Namespace, TextIO], int]


def configure(parser: argparse.ArgumentParser) -> Handler:
    """Add the command's arguments to its ``parser``; return the handler that runs it."""
    parser.add_argument("architecture", help="an architecture (segcore list architectures)")
    parser.add_argument("--encoder", default="resnet34",
                        help="an encoder (segcore list encoders); default resnet34")
    parser.add_argument("--classes", type=int, default=1, help="output channels; default 1")
    parser.add_argument("--in-channels", type=int, default=3, help="input channels; default 3")
    return count_params


def count_params(arguments: argparse.Namespace, out: TextIO) -> int:
    """Build the model (random weights, nothing downloaded) and print its parameter counts.

    Returns the exit status. A segcore error (an unknown name, a bad option) propagates: the
    ``segcore`` command prints it as ``segcore: error: ...`` and exits with status 2.
    """
    import segcore

    model = segcore.build(arguments.architecture, encoder=arguments.encoder,
                          classes=arguments.classes, in_channels=arguments.in_channels)
    total = sum(parameter.numel() for parameter in model.parameters())
    encoder = sum(parameter.numel() for parameter in model.encoder.parameters())
    print(f"{model.name}: {total:,} parameters ({encoder:,} in the encoder)", file=out)
    return 0
