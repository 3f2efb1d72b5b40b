"""segcore hook implementations of the MAnet plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="manet",
            model="segcore_manet.model:MAnet",
            description=(
                "MA-Net: position-wise attention on the deepest features, then multi-scale "
                "fusion attention blocks gating each encoder skip; input sizes divisible by "
                "the output stride"
            ),
        )
    ]
