"""segcore hook implementations of the DeepLab plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_decoders() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="deeplabv3",
            class_name="DeepLabV3",
            model="segcore_deeplab.model:DeepLabV3",
            options="segcore_deeplab.options:DeepLabV3Options",
            requires_dilation=True,
            description="atrous spatial pyramid pooling on dilated encoder features "
            "(arXiv:1706.05587)",
        ),
        ArchitectureSpec(
            name="deeplabv3plus",
            class_name="DeepLabV3Plus",
            model="segcore_deeplab.model:DeepLabV3Plus",
            options="segcore_deeplab.options:DeepLabV3PlusOptions",
            requires_dilation=True,
            description="DeepLabV3 with a light decoder fusing 1/4-resolution features "
            "(arXiv:1802.02611)",
        ),
    ]
