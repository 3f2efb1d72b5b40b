"""An example metric plugin for segcore (docs/plugins.md, part 3): ``dice_coefficient``.

Example::

    import segcore
    dice = segcore.get_metric("dice_coefficient")
    score = dice(tp, fp, fn, tn, reduction="macro")
    # or: from segcore_example_metric import dice_coefficient

Imported when segcore discovers the plugin, so the function is loaded on first use.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["REDUCTIONS", "dice_coefficient"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {"REDUCTIONS": "segcore_example_metric.metric",
     "dice_coefficient": "segcore_example_metric.metric"},
)
