"""The segmentation head and the classification (aux) head.

Core registers them through its own ``segcore_heads`` hook, the same way plugins do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from segcore.errors import InvalidOptionError
from segcore.hookspecs import hookimpl
from segcore.nn import Activation, ActivationOption, check_activation
from segcore.specs import HeadSpec

AUX_PARAM_NAMES = ("classes", "pooling", "dropout", "activation")
POOLINGS = ("avg", "max")


class SegmentationHead(nn.Sequential):
    """Conv2d to ``classes`` channels -> optional bilinear upsampling -> activation.

    Children ``0`` (conv), ``1`` (upsample or identity), ``2`` (activation), as SMP.
    Input ``(N, in_channels, h, w)``, output ``(N, out_channels, h * upsampling, w * upsampling)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: ActivationOption = None,
        upsampling: int = 1,
    ) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        upsample: nn.Module = (
            nn.Upsample(mode="bilinear", scale_factor=upsampling, align_corners=True)
            if upsampling > 1
            else nn.Identity()
        )
        super().__init__(conv, upsample, Activation(activation))


class ClassificationHead(nn.Sequential):
    """Global pooling -> flatten -> dropout -> linear -> activation, on the deepest features.

    Input ``(N, in_channels, h, w)``, output ``(N, classes)``.
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        pooling: str = "avg",
        dropout: float | None = 0.2,
        activation: ActivationOption = None,
    ) -> None:
        check_aux_params(
            {"classes": classes, "pooling": pooling, "dropout": dropout, "activation": activation}
        )
        pool = nn.AdaptiveAvgPool2d(1) if pooling == "avg" else nn.AdaptiveMaxPool2d(1)
        drop: nn.Module = nn.Dropout(p=dropout, inplace=True) if dropout else nn.Identity()
        super().__init__(
            pool, nn.Flatten(), drop, nn.Linear(in_channels, classes, bias=True),
            Activation(activation),
        )


def check_aux_params(aux_params: Mapping[str, Any]) -> None:
    """Validate an ``aux_params`` dict, raising ``InvalidOptionError`` with the fix."""
    if not isinstance(aux_params, Mapping):
        raise InvalidOptionError(
            f"aux_params must be a dict such as {{'classes': 4, 'pooling': 'avg', "
            f"'dropout': 0.5, 'activation': None}}, got {type(aux_params).__name__}"
        )
    unknown = sorted(set(aux_params) - set(AUX_PARAM_NAMES))
    if unknown:
        raise InvalidOptionError(
            f"unknown aux_params key(s) {unknown}; valid keys are {list(AUX_PARAM_NAMES)}"
        )
    if "classes" not in aux_params:
        raise InvalidOptionError("aux_params needs 'classes', the number of labels to predict")
    classes = aux_params["classes"]
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise InvalidOptionError(f"aux_params['classes'] must be a positive int, got {classes!r}")
    pooling = aux_params.get("pooling", "avg")
    if pooling not in POOLINGS:
        raise InvalidOptionError(f"aux_params['pooling'] must be 'avg' or 'max', got {pooling!r}")
    dropout = aux_params.get("dropout")
    if dropout is not None and not (isinstance(dropout, int | float) and 0 <= dropout < 1):
        raise InvalidOptionError(f"aux_params['dropout'] must be in [0, 1), got {dropout!r}")
    check_activation(aux_params.get("activation"))


@hookimpl
def segcore_heads() -> list[HeadSpec]:
    return [
        HeadSpec(
            name="segmentation",
            factory="segcore.heads:SegmentationHead",
            description="conv to the class count, upsampling, activation",
        ),
        HeadSpec(
            name="classification",
            factory="segcore.heads:ClassificationHead",
            description="pooling, dropout, linear, activation on the deepest encoder features",
        ),
    ]
