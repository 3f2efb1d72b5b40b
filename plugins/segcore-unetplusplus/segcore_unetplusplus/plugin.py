"""segcore hook implementations of the UNet++ plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="unetplusplus",
            model="segcore_unetplusplus.model:UnetPlusPlus",
            description=(
                "UNet++: U-Net whose skips are nested, densely connected decoder paths; "
                "inputs padded to the encoder's output stride"
            ),
        )
    ]
