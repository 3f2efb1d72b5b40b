"""segcore hook implementations of the DPT plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="dpt",
            model="segcore_dpt.model:DPT",
            description=(
                "Dense Prediction Transformer: token maps from several blocks of a timm Vision "
                "Transformer are reassembled at four scales and fused coarse-to-fine by "
                "residual convolution units"
            ),
        )
    ]
