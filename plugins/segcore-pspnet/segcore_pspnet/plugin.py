"""segcore hook implementations of the PSPNet plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="pspnet",
            model="segcore_pspnet.model:PSPNet",
            description=(
                "Pyramid Scene Parsing Network: pyramid pooling (1x1, 2x2, 3x3, 6x6 bins) on "
                "the deepest encoder features, fused and upsampled (arXiv:1612.01105)"
            ),
        )
    ]
