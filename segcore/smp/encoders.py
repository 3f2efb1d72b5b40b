"""``smp.encoders``: SMP 0.6.0's encoder functions, served by segcore's encoder plugins.

Example::

    from segcore.smp.encoders import get_encoder, get_preprocessing_fn
    encoder = get_encoder("resnet18", in_channels=1, depth=4, weights=None)
    preprocess = get_preprocessing_fn("resnet18", pretrained="imagenet")

Differences from SMP (docs/smp.md): keyword arguments that an encoder does not take are ignored
with a ``CompatibilityWarning`` (SMP ignores them silently); a string ``weights`` other than
``"imagenet"`` for a ``tu-`` encoder is refused (SMP warns and loads timm's default weights).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import segcore
from segcore.smp import CompatibilityWarning

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "get_encoder",
    "get_encoder_names",
    "get_preprocessing_fn",
    "get_preprocessing_params",
    "preprocess_input",
]

#: SMP names that are not served, with what to use instead.
NOT_SERVED: dict[str, str] = {
    "encoders": (
        "SMP's encoder table (smp.encoders.encoders, and registering an encoder by adding to "
        "it) is not served: segcore finds encoders through plugins. List the names with "
        "get_encoder_names() or segcore.list_encoders(); add an encoder with a plugin package "
        "(docs/plugins.md)"
    ),
    "TimmUniversalEncoder": (
        "the 'tu-' encoders are provided by the segcore-timm plugin (its class is "
        "segcore_timm.TimmUniversalEncoder); build one with get_encoder('tu-<timm name>')"
    ),
    "TimmViTEncoder": (
        "the ViT encoder of DPT is provided by the segcore-dpt plugin (its class is "
        "segcore_dpt.TimmViTEncoder); build it through smp.DPT(...)"
    ),
}


def get_encoder(
    name: str,
    in_channels: int = 3,
    depth: int = 5,
    weights: str | os.PathLike[str] | bool | None = None,
    output_stride: int = 32,
    **kwargs: Any,
) -> nn.Module:
    """Build an encoder alone (``segcore.get_encoder`` with SMP's handling of ``**kwargs``).

    ``**kwargs`` go to encoders that take extra arguments (``tu-`` timm models:
    ``drop_path_rate=0.1``...). For the others SMP 0.6.0 drops them; here they are dropped too,
    with a ``CompatibilityWarning`` naming them.
    """
    if kwargs:
        from segcore.factory import get_encoder_spec

        if not get_encoder_spec(name).accepts_kwargs:
            warnings.warn(
                f"get_encoder({name!r}): encoder {name!r} takes no extra arguments; ignoring "
                f"{', '.join(map(repr, kwargs))} (as SMP 0.6.0 does). Remove them to silence "
                f"this warning.",
                CompatibilityWarning,
                stacklevel=2,
            )
            kwargs = {}
    return segcore.get_encoder(name, in_channels=in_channels, depth=depth, weights=weights,
                               output_stride=output_stride, **kwargs)


def get_encoder_names() -> list[str]:
    """The installed encoder names, with their other spellings (SMP 0.6.0's
    ``timm-tf_efficientnet_lite0``...). ``tu-<timm name>`` encoders are open-ended and not
    listed."""
    from segcore.registry import get_registry

    names: list[str] = []
    for entry in get_registry().entries("encoders"):
        names.append(entry.spec.name)
        names.extend(entry.spec.aliases)
    return names


def get_preprocessing_params(encoder_name: str, pretrained: str = "imagenet") -> dict[str, Any]:
    """``{"input_space", "input_range", "mean", "std"}`` of an encoder's pretrained weights."""
    return segcore.get_preprocessing_params(encoder_name, pretrained=pretrained)


def get_preprocessing_fn(encoder_name: str, pretrained: str = "imagenet") -> Callable[..., Any]:
    """The normalisation of an encoder's pretrained weights, for channels-last images.

    Scaling follows the dtype (uint8 images are divided by 255), never the values: a float
    image is taken as already in ``[0, 1]`` (SMP divides floats above 1 by 255; segcore warns).
    """
    return segcore.get_preprocessing_fn(encoder_name, pretrained=pretrained)


def preprocess_input(x: Any, mean: Any = None, std: Any = None, input_space: str = "RGB",
                     input_range: Any = None, **kwargs: Any) -> Any:
    """Normalise an image with explicit parameters (``segcore.preprocessing.preprocess_input``)."""
    from segcore.preprocessing import preprocess_input as preprocess

    return preprocess(x, mean=mean, std=std, input_space=input_space,
                      input_range=input_range, **kwargs)


def __getattr__(name: str) -> Any:
    if name in NOT_SERVED:
        raise AttributeError(
            f"segcore.smp.encoders has no {name!r}: {NOT_SERVED[name]} (docs/smp.md)"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
