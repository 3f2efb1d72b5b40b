"""Hook implementations only: describe the loss, reference its class lazily."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import LossSpec


@hookimpl
def segcore_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="focal_tversky",
            factory="segcore_example_loss.loss:FocalTverskyLoss",
            description="(1 - Tversky index) ** gamma; binary, multiclass, multilabel",
        )
    ]
