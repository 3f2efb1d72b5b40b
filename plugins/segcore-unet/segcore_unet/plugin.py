"""segcore hook implementations of the Unet plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="unet",
            model="segcore_unet.model:Unet",
            description=(
                "U-Net: upsampling decoder fusing encoder features through concatenated skip "
                "connections; any input size"
            ),
        )
    ]
