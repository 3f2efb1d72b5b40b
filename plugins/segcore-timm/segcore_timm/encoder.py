"""The ``tu-<timm model>`` encoder: a timm feature extractor behind the segcore encoder contract.

The timm model lives in ``self.model`` (as in SMP's ``TimmUniversalEncoder``), so SMP
checkpoints (encoder keys ``model.*``) load with ``strict=True``.
"""

from __future__ import annotations

from typing import Any

import timm
import torch

from segcore.encoder import EncoderBase
from segcore.errors import (
    EncoderCapabilityError,
    InvalidOptionError,
    UnknownOptionError,
    UnknownWeightsError,
    WeightsNotFoundError,
)
from segcore.options import check_reserved_timm_options
from segcore_timm.layout import (
    PREFIX,
    STYLE_TRANSFORMER,
    SUGGESTED_MODELS,
    WEIGHTS_TAG,
    probe_layout,
    timm_model_name,
)

#: ``timm.create_model`` arguments the encoder sets itself, and the option to use instead.
RESERVED_TIMM_OPTIONS = {
    "features_only": "it is always True for an encoder",
    "out_indices": "use depth (encoder_depth) instead",
    "in_chans": "use in_channels instead",
    "pretrained": "use weights (encoder_weights='imagenet' or True) instead",
    "output_stride": "use output_stride instead",
}


class TimmUniversalEncoder(EncoderBase):
    """Any timm model with ``features_only`` support, as a segcore encoder.

    ``forward(x)`` returns ``depth + 1`` maps: the input, then reductions 2, 4, ... ``2**depth``
    (capped at ``output_stride``). Transformer-style models, whose features start at
    reduction 4, get an empty 0-channel map at reduction 2; channels-last (``NHWC``) features
    are permuted to ``NCHW``.

    Args:
        name: timm model name, with or without the ``"tu-"`` prefix (``"convnext_atto"``).
        in_channels: input channels (timm adapts the first convolution, also for pretrained
            weights).
        depth: reductions returned, 1-5.
        output_stride: 32, or 16/8 for models timm can dilate.
        pretrained: let timm load its pretrained weights (downloads them when not cached).
        **timm_kwargs: passed to ``timm.create_model`` (``drop_path_rate=0.1``...).

    Example::

        encoder = TimmUniversalEncoder("convnext_atto", in_channels=1, depth=4)
        features = encoder(torch.rand(2, 1, 64, 64))
        # shapes (2,1,64,64) (2,0,32,32) (2,40,16,16) (2,80,8,8) (2,160,4,4)
    """

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        depth: int = 5,
        output_stride: int = 32,
        pretrained: bool = False,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__(depth=depth, output_stride=output_stride)  # validates both
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise InvalidOptionError(f"in_channels must be a positive int, got {in_channels!r}")
        check_reserved_timm_options(timm_kwargs, RESERVED_TIMM_OPTIONS, "tu- encoder")
        timm_name = timm_model_name(name)
        layout = probe_layout(timm_name)
        layout.require(depth)
        dilate = output_stride < 2**depth
        if dilate and not layout.supports_dilation:
            raise EncoderCapabilityError(
                f"encoder {PREFIX + timm_name!r} cannot be dilated to output_stride="
                f"{output_stride}: timm does not build model {timm_name!r} with output_stride. "
                f"Use output_stride=32, or a model that supports it (e.g. 'tu-resnet50', "
                f"'tu-convnext_tiny')."
            )

        options: dict[str, Any] = {
            "features_only": True,
            "out_indices": layout.out_indices(depth),
            "in_chans": in_channels,
            "pretrained": bool(pretrained),
        }
        if dilate:
            options["output_stride"] = output_stride
        self.model = _create_model(timm_name, options, timm_kwargs)

        expected = layout.reductions_for(depth, output_stride if dilate else 32)
        actual = tuple(int(r) for r in self.model.feature_info.reduction())
        if actual != expected:
            raise EncoderCapabilityError(
                f"encoder {PREFIX + timm_name!r}: timm built features with reductions "
                f"{list(actual)}, expected {list(expected)}"
                + (f" for output_stride={output_stride}; this model cannot be dilated that "
                   f"far, use output_stride=32 or 16" if dilate else "")
                + "."
            )

        self.name = timm_name
        self._channels_last = layout.channels_last
        self._adds_reduction_2 = layout.style == STYLE_TRANSFORMER
        self._runs_model = bool(options["out_indices"])
        channels = tuple(int(c) for c in self.model.feature_info.channels())
        missing = (0,) if self._adds_reduction_2 else ()
        self._out_channels: tuple[int, ...] = (in_channels, *missing, *channels)
        self._in_channels = in_channels

    # depth, out_channels, output_stride, in_channels and set_in_channels come from
    # EncoderBase; dilation is timm's own (output_stride at creation), not make_dilated.

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of ``x`` (``N, C, H, W``): the input, then one map per reduction."""
        # Written for TorchScript too: no unpacking of shapes, no starred lists.
        # A transformer-style model at depth 1 has no timm level to return: only the empty one.
        levels: list[torch.Tensor] = list(self.model(x)) if self._runs_model else []
        if self._channels_last:
            levels = [level.permute(0, 3, 1, 2).contiguous() for level in levels]
        features = [x]
        if self._adds_reduction_2:
            empty = torch.empty(
                (x.shape[0], 0, (x.shape[2] + 1) // 2, (x.shape[3] + 1) // 2),
                dtype=levels[0].dtype if len(levels) > 0 else x.dtype, device=x.device,
            )
            features.append(empty)
        features.extend(levels)
        return features


def _create_model(timm_name: str, options: dict[str, Any], timm_kwargs: dict[str, Any]) -> Any:
    """``timm.create_model`` with errors that say which option or capability was the problem."""
    try:
        return timm.create_model(timm_name, **options, **timm_kwargs)
    except OSError as error:
        if not options.get("pretrained"):
            raise
        raise WeightsNotFoundError(
            f"encoder {PREFIX + timm_name!r}: timm could not get its pretrained weights "
            f"({type(error).__name__}: {error}). timm downloads them from the Hugging Face hub "
            f"into its cache (HF_HOME); on an offline machine copy that cache from a machine "
            f"with internet, or pass encoder_weights=None for random initialisation."
        ) from error
    except Exception as error:
        name = PREFIX + timm_name
        message = f"{type(error).__name__}: {error}".rstrip(": ")
        unexpected = [k for k in timm_kwargs if f"'{k}'" in str(error)]
        if isinstance(error, TypeError) and "unexpected keyword" in str(error) and unexpected:
            raise UnknownOptionError(
                f"encoder {name!r}: timm model {timm_name!r} does not take option(s) "
                f"{', '.join(repr(k) for k in unexpected)} ({message})."
            ) from error
        given = f" with options {timm_kwargs}" if timm_kwargs else ""
        stride = (f" and output_stride={options['output_stride']}"
                  if "output_stride" in options else "")
        suggestions = ", ".join(repr(s) for s in SUGGESTED_MODELS)
        raise EncoderCapabilityError(
            f"encoder {name!r}: timm could not build model {timm_name!r} as a feature extractor "
            f"(features_only=True{stride}){given}: {message}. Remove the conflicting options, "
            f"or choose a model that supports features_only, such as {suggestions}."
        ) from error


def build_timm_encoder(
    name: str,
    in_channels: int = 3,
    depth: int = 5,
    output_stride: int = 32,
    weights: str | bool | None = None,
    **kwargs: Any,
) -> TimmUniversalEncoder:
    """The factory of ``tu-`` encoders (called by ``segcore.get_encoder``).

    ``weights="imagenet"`` (or ``True``) makes timm load its own pretrained weights for the
    model (the tag in the name, ``"tu-resnet18.a1_in1k"``, picks which).

    Example::

        encoder = build_timm_encoder("tu-resnet18", depth=4, output_stride=16)
    """
    check_reserved_timm_options(kwargs, RESERVED_TIMM_OPTIONS, "tu- encoder")
    if weights is not None and weights is not False and weights not in (WEIGHTS_TAG, True):
        raise UnknownWeightsError(
            f"encoder {name!r} takes encoder_weights=None, True or {WEIGHTS_TAG!r} (timm's "
            f"pretrained weights), got {weights!r}. Pick another timm tag in the name: "
            f"'tu-<model>.<tag>'."
        )
    pretrained = weights is not None and weights is not False
    return TimmUniversalEncoder(name, in_channels=in_channels, depth=depth,
                                output_stride=output_stride, pretrained=pretrained, **kwargs)
