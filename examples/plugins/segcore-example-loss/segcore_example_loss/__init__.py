"""An example loss plugin for segcore (docs/plugins.md, part 3): ``focal_tversky``.

Example::

    import segcore
    loss = segcore.build_loss("focal_tversky", mode="binary")
    # or: from segcore_example_loss import FocalTverskyLoss

Imported when segcore discovers the plugin, so the class is loaded on first use.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["FocalTverskyLoss"]
__getattr__, __dir__ = lazy_exports(__name__, {"FocalTverskyLoss": "segcore_example_loss.loss"})
