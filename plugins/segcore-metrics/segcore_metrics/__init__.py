"""segcore-metrics: segmentation metrics with the API of ``segmentation_models_pytorch.metrics``.

Example::

    import segcore_metrics as M

    tp, fp, fn, tn = M.get_stats(logits.argmax(1), masks, mode="multiclass", num_classes=21)
    M.iou_score(tp, fp, fn, tn, reduction="macro")

    accumulator = M.MetricAccumulator("multiclass", num_classes=21, ignore_index=255)
    for images, masks in loader:
        accumulator.update(model(images).argmax(1), masks)
    accumulator.compute("iou_score", reduction="macro")

The score functions are also found by name: ``segcore.get_metric("iou_score")``. The names
below are imported lazily, so that discovering the plugin (``segcore_metrics.plugin``) imports
no implementation module.
"""

from __future__ import annotations

from segcore import BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE
from segcore.specs import lazy_exports

FUNCTIONAL_EXPORTS = (
    "METRICS",
    "MODES",
    "REDUCTIONS",
    "UndefinedMetricWarning",
    "accuracy",
    "balanced_accuracy",
    "f1_score",
    "false_discovery_rate",
    "false_negative_rate",
    "false_omission_rate",
    "false_positive_rate",
    "fbeta_score",
    "get_stats",
    "iou_score",
    "negative_likelihood_ratio",
    "negative_predictive_value",
    "positive_likelihood_ratio",
    "positive_predictive_value",
    "precision",
    "recall",
    "sensitivity",
    "specificity",
)
_EXPORTS = {
    "MetricAccumulator": "segcore_metrics.accumulator",
    **{name: "segcore_metrics.functional" for name in FUNCTIONAL_EXPORTS},
}
__all__ = ["BINARY_MODE", "MULTICLASS_MODE", "MULTILABEL_MODE", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
