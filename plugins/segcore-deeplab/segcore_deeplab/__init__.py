"""DeepLabV3 and DeepLabV3+ for segcore.

Example::

    from segcore_deeplab import DeepLabV3Plus
    model = DeepLabV3Plus("resnet34", encoder_weights=None, classes=3)

The names are imported on first access, so loading the plugin (``segcore_deeplab.plugin``)
while listing what is installed imports no torch module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segcore.specs import lazy_exports

if TYPE_CHECKING:
    from segcore_deeplab.model import DeepLabV3, DeepLabV3Plus
    from segcore_deeplab.options import DeepLabOptions, DeepLabV3Options, DeepLabV3PlusOptions

_EXPORTS = {
    "DeepLabV3": "segcore_deeplab.model",
    "DeepLabV3Plus": "segcore_deeplab.model",
    "DeepLabOptions": "segcore_deeplab.options",
    "DeepLabV3Options": "segcore_deeplab.options",
    "DeepLabV3PlusOptions": "segcore_deeplab.options",
}
__all__ = [
    "DeepLabOptions",
    "DeepLabV3",
    "DeepLabV3Options",
    "DeepLabV3Plus",
    "DeepLabV3PlusOptions",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
