"""``SegmentationModel``: encoder -> decoder -> segmentation head (+ classification head).

An architecture plugin subclasses it with the documented constructor, an attrs options class
and two methods::

    @attrs.frozen
    class UnetOptions(ArchitectureOptions):
        decoder_channels: tuple[int, ...] = attrs.field(default=(256, 128, 64, 32, 16), ...)

        def check(self, encoder_depth: int) -> None:   # cross-field checks
            ...

    class Unet(SegmentationModel):
        architecture = "unet"
        options_class = UnetOptions
        requires_divisible_input_shape = False

        def __init__(self, encoder_name="resnet34", ..., **kwargs):
            super().__init__(encoder_name=encoder_name, ..., encoder_params=kwargs,
                             decoder_channels=decoder_channels, ...)

        def build_decoder(self, encoder_channels, options): ...
        def segmentation_head_options(self, options): return {"in_channels": ..., ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch
from torch import nn

from segcore.encoder import check_depth
from segcore.errors import InputShapeError, InvalidOptionError, UnknownOptionError, did_you_mean
from segcore.heads import ClassificationHead, SegmentationHead, check_aux_params
from segcore.nn import ActivationOption, check_activation, initialize_decoder, initialize_head

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class ArchitectureOptions:
    """Base of the attrs classes that validate an architecture's options.

    Subclasses are ``@attrs.frozen`` classes whose fields are the options, with validators
    (``segcore.options`` has the common ones). ``check`` does the cross-field checks that need
    the encoder depth.
    """

    @classmethod
    def names(cls) -> list[str]:
        return [field.name for field in attrs.fields(cls)]

    @classmethod
    def from_options(cls, architecture: str, **options: Any) -> ArchitectureOptions:
        """Validate keyword options, with errors that name the valid ones."""
        valid = cls.names()
        unknown = [name for name in options if name not in valid]
        if unknown:
            hint = "".join(did_you_mean(name, valid) for name in unknown)
            raise UnknownOptionError(
                f"unknown option(s) {', '.join(repr(n) for n in unknown)} for {architecture}."
                f"{hint} Valid options: {', '.join(valid)}."
            )
        try:
            return cls(**options)
        except InvalidOptionError:
            raise
        except (TypeError, ValueError) as error:
            raise InvalidOptionError(f"invalid option for {architecture}: {error}") from error

    def check(self, encoder_depth: int) -> None:
        """Cross-field checks (e.g. one decoder channel count per encoder stage)."""

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)  # type: ignore[arg-type]


def _compiling() -> bool:
    return bool(
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
    )


class SegmentationModel(nn.Module):
    """Base class of every architecture.

    ``forward(x)`` takes ``(N, in_channels, H, W)`` and returns mask logits
    ``(N, classes, H, W)``, or ``(mask, labels)`` with labels ``(N, aux classes)`` when
    ``aux_params`` was given.
    """

    architecture: ClassVar[str] = ""
    options_class: ClassVar[type[ArchitectureOptions]] = ArchitectureOptions
    #: whether H and W must be multiples of the encoder's output stride
    requires_divisible_input_shape: ClassVar[bool] = True
    #: the smallest encoder depth the decoder works with
    min_encoder_depth: ClassVar[int] = 3

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = None,
        in_channels: int = 3,
        classes: int = 1,
        activation: ActivationOption = None,
        aux_params: Mapping[str, Any] | None = None,
        encoder_params: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        from segcore.resolver import get_encoder

        name = self.architecture or type(self).__name__
        check_depth(encoder_depth, range(self.min_encoder_depth, 6))
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("classes", classes)
        check_activation(activation)
        if aux_params is not None:
            check_aux_params(aux_params)
        parsed = self.options_class.from_options(name, **options)
        parsed.check(encoder_depth)
        self.options = parsed
        self._in_channels = in_channels
        self._is_encoder_frozen = False

        self.encoder = get_encoder(
            encoder_name,
            in_channels=in_channels,
            depth=encoder_depth,
            weights=encoder_weights,
            output_stride=self.encoder_output_stride(parsed),
            needed_by=name,
            other_options=self.options_class.names(),
            **dict(encoder_params or {}),
        )
        self.decoder = self.build_decoder(tuple(self.encoder.out_channels), parsed)
        self.segmentation_head = SegmentationHead(
            out_channels=classes, activation=activation, **self.segmentation_head_options(parsed)
        )
        self.classification_head: nn.Module | None = (
            ClassificationHead(in_channels=self.encoder.out_channels[-1], **aux_params)
            if aux_params is not None
            else None
        )
        self.name = f"{name}-{encoder_name}"
        self._config = {
            "architecture": name,
            "encoder_name": encoder_name,
            "encoder_depth": encoder_depth,
            "in_channels": in_channels,
            "classes": classes,
            "activation": activation if activation is None or isinstance(activation, str)
            else None,
            "aux_params": dict(aux_params) if aux_params is not None else None,
            "encoder_params": dict(encoder_params or {}),
            **parsed.as_dict(),
        }
        self.initialize()

    # -- what subclasses provide ---------------------------------------------------------
    def encoder_output_stride(self, options: Any) -> int:
        """The ``output_stride`` the encoder is built with (32: no dilation)."""
        return 32

    def build_decoder(self, encoder_channels: tuple[int, ...], options: Any) -> nn.Module:
        raise NotImplementedError

    def segmentation_head_options(self, options: Any) -> dict[str, Any]:
        """``in_channels``, ``kernel_size`` and ``upsampling`` of the segmentation head."""
        raise NotImplementedError

    # -- behaviour -----------------------------------------------------------------------
    def initialize(self) -> None:
        initialize_decoder(self.decoder)
        initialize_head(self.segmentation_head)
        if self.classification_head is not None:
            initialize_head(self.classification_head)

    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model with ``segcore.from_config``.

        Tuples become lists so it is JSON-serialisable; a callable activation is stored as
        ``None`` (pass it again when rebuilding).
        """
        return json.loads(json.dumps(self._config, default=list))

    def check_input_shape(self, x: torch.Tensor) -> None:
        """Raise ``InputShapeError`` naming the fix when ``x`` cannot go through the model."""
        if x.dim() != 4:
            raise InputShapeError(
                f"expected a 4D tensor (batch, channels, height, width), got shape "
                f"{tuple(x.shape)}. Add a batch dimension with x.unsqueeze(0)."
            )
        if x.shape[1] != self._in_channels:
            raise InputShapeError(
                f"the model takes {self._in_channels} input channel(s), got {x.shape[1]} "
                f"(input shape {tuple(x.shape)}). Build it with in_channels={x.shape[1]}, or "
                f"convert the images."
            )
        if not self.requires_divisible_input_shape:
            return
        height, width = int(x.shape[-2]), int(x.shape[-1])
        stride = int(self.encoder.output_stride)
        if height % stride or width % stride:
            up = (_round_up(height, stride), _round_up(width, stride))
            nearest = (_round_nearest(height, stride), _round_nearest(width, stride))
            raise InputShapeError(
                f"{self.architecture or type(self).__name__} needs height and width divisible "
                f"by {stride}, got {height}x{width}. The nearest valid size is "
                f"{nearest[0]}x{nearest[1]}; pad the images to {up[0]}x{up[1]} (or resize/crop)."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not _compiling():
            self.check_input_shape(x)
        features = self.encoder(x)
        decoder_output = self.decoder(features)
        masks = self.segmentation_head(decoder_output)
        if self.classification_head is not None:
            labels = self.classification_head(features[-1])
            return masks, labels
        return masks

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Switch to eval mode and run ``forward`` under ``torch.inference_mode()``."""
        if self.training:
            self.eval()
        return self(x)

    def train(self, mode: bool = True) -> SegmentationModel:
        """As ``nn.Module.train``, but a frozen encoder stays in eval mode."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode must be a bool, got {mode!r}")
        self.training = mode
        for name, module in self.named_children():
            if self._is_encoder_frozen and name == "encoder":
                continue
            module.train(mode)
        return self

    def freeze_encoder(self) -> SegmentationModel:
        """Stop training the encoder: no gradients, normalisation statistics frozen."""
        self._set_encoder_trainable(False)
        return self

    def unfreeze_encoder(self) -> SegmentationModel:
        """Undo ``freeze_encoder``."""
        self._set_encoder_trainable(True)
        return self

    def _set_encoder_trainable(self, trainable: bool) -> None:
        for parameter in self.encoder.parameters():
            parameter.requires_grad = trainable
        for module in self.encoder.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                module.train(trainable and self.training)
        self._is_encoder_frozen = not trainable

    # -- saving --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config, indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        return directory


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


def _round_nearest(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidOptionError(f"{name} must be a positive int, got {value!r}")


def from_config(
    config: Mapping[str, Any], activation: Callable[..., nn.Module] | None = None
) -> SegmentationModel:
    """Rebuild a model (random weights) from ``model.config``."""
    from segcore.resolver import build

    arguments = dict(config)
    architecture = arguments.pop("architecture")
    encoder = arguments.pop("encoder_name")
    encoder_params = arguments.pop("encoder_params", None) or {}
    if activation is not None:
        arguments["activation"] = activation
    return build(architecture, encoder=encoder, encoder_weights=None, **arguments,
                 **encoder_params)


def from_pretrained(directory: str | os.PathLike[str]) -> SegmentationModel:
    """Load a model saved with ``save_pretrained``."""
    from segcore.weights import load_into, load_state_dict

    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        from segcore.errors import WeightsNotFoundError

        raise WeightsNotFoundError(
            f"{str(directory)!r} has no {CONFIG_FILE}; it must be a directory written by "
            f"model.save_pretrained()."
        )
    model = from_config(json.loads(config_path.read_text()))
    load_into(model, load_state_dict(directory / WEIGHTS_FILE), f"weights in {directory}")
    return model
