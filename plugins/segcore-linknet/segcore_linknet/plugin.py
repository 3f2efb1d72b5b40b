"""segcore hook implementations of the Linknet plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="linknet",
            model="segcore_linknet.model:Linknet",
            description=(
                "LinkNet: light decoder of transposed-convolution blocks fusing encoder "
                "features through summed skip connections (arXiv:1707.03718)"
            ),
        )
    ]
