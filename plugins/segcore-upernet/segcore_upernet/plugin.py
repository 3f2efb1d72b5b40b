"""segcore hook implementations of the UPerNet plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="upernet",
            model="segcore_upernet.model:UPerNet",
            description=(
                "Unified Perceptual Parsing: pyramid pooling on the deepest encoder stage, a "
                "top-down feature pyramid over the others, all levels fused at 1/4 of the "
                "input size"
            ),
        )
    ]
