"""Hook implementations of segcore-train: the ``segcore data`` command.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``; the command's code is
referenced as ``"segcore_train.cli:configure_data"`` and imported when ``segcore`` starts.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import CommandSpec


@hookimpl
def segcore_commands() -> list[CommandSpec]:
    """``segcore data synth|check``."""
    return [CommandSpec(name="data", factory="segcore_train.cli:configure_data",
                        help="training data: write the synthetic dataset, check a folder"),
            CommandSpec(name="evaluate", factory="segcore_train.evaluate_cli:configure_evaluate",
                        help="score a saved model on a dataset: per-class IoU, F1, precision, "
                             "recall"),
            CommandSpec(name="train", factory="segcore_train.train_cli:configure_train",
                        help="train a model from a TOML configuration (torchrun for DDP)"),
            CommandSpec(name="predict", factory="segcore_train.predict_cli:configure_predict",
                        help="predict masks of images of any size (tiles, TTA)"),
            ]
