"""segcore hook implementations of the PAN plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="pan",
            model="segcore_pan.model:PAN",
            description=(
                "Pyramid Attention Network: a feature pyramid attention block on the deepest "
                "(dilated) encoder features, then global attention upsampling blocks back to "
                "1/4 of the input size"
            ),
        )
    ]
