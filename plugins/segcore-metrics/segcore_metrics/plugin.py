"""segcore hook implementations of the metrics plugin (specs only; nothing heavy is imported)."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import MetricSpec

#: Metric name -> one-line description. Every name is a function of ``segcore_metrics.functional``.
_METRICS = {
    "fbeta_score": "F-beta score: (1+b^2)tp / ((1+b^2)tp + b^2 fn + fp)",
    "f1_score": "F1 score (Dice): 2tp / (2tp + fp + fn)",
    "iou_score": "IoU (Jaccard index): tp / (tp + fp + fn)",
    "accuracy": "Accuracy: (tp + tn) / (tp + fp + fn + tn)",
    "precision": "Precision (PPV): tp / (tp + fp)",
    "recall": "Recall (sensitivity, TPR): tp / (tp + fn)",
    "sensitivity": "Sensitivity (recall, TPR): tp / (tp + fn)",
    "specificity": "Specificity (TNR): tn / (tn + fp)",
    "balanced_accuracy": "Balanced accuracy: (TPR + TNR) / 2",
    "positive_predictive_value": "Positive predictive value (precision): tp / (tp + fp)",
    "negative_predictive_value": "Negative predictive value: tn / (tn + fn)",
    "false_negative_rate": "False negative rate (miss rate): fn / (fn + tp)",
    "false_positive_rate": "False positive rate (fall-out): fp / (fp + tn)",
    "false_discovery_rate": "False discovery rate: fp / (fp + tp)",
    "false_omission_rate": "False omission rate: fn / (fn + tn)",
    "positive_likelihood_ratio": "Positive likelihood ratio: TPR / FPR",
    "negative_likelihood_ratio": "Negative likelihood ratio: FNR / TNR",
}


@hookimpl
def segcore_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(name=name, factory=f"segcore_metrics.functional:{name}", description=text)
        for name, text in _METRICS.items()
    ]
