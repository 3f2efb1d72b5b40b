"""segcore hook implementations of the Segformer plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="segformer",
            model="segcore_segformer.model:Segformer",
            description=(
                "Segformer: every encoder stage projected by a per-pixel linear layer, resized "
                "to 1/4 of the input, concatenated and fused by a 1x1 conv-BatchNorm-ReLU"
            ),
        )
    ]
