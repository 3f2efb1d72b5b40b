"""segcore hook implementations of the FPN plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="fpn",
            model="segcore_fpn.model:FPN",
            description=(
                "Feature Pyramid Network: a top-down pyramid over the four deepest encoder "
                "stages, each level refined and upsampled to the finest one, then summed or "
                "concatenated"
            ),
        )
    ]
