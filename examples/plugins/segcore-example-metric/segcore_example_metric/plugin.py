"""Hook implementations only: describe the metric, reference its function lazily."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import MetricSpec


@hookimpl
def segcore_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            name="dice_coefficient",
            factory="segcore_example_metric.metric:dice_coefficient",
            description="Dice coefficient: 2tp / (2tp + fp + fn)",
        )
    ]
