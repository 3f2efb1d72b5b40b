"""segcore hook implementations of the DeepLab plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="deeplabv3",
            model="segcore_deeplab.model:DeepLabV3",
            description="atrous spatial pyramid pooling on dilated encoder features "
            "(arXiv:1706.05587)",
        ),
        ArchitectureSpec(
            name="deeplabv3plus",
            model="segcore_deeplab.model:DeepLabV3Plus",
            description="DeepLabV3 with a light decoder fusing 1/4-resolution features "
            "(arXiv:1802.02611)",
        ),
    ]
