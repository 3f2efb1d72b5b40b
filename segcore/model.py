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

import torch
from torch import nn

from segcore.encoder import check_depth
from segcore.errors import InputShapeError, InputTypeError, InvalidOptionError
from segcore.heads import ClassificationHead, SegmentationHead, check_aux_params
from segcore.nn import ActivationOption, check_activation, initialize_decoder, initialize_head
from segcore.options import ArchitectureOptions

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


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
    #: whether the encoder must support dilation (``output_stride`` 8/16) with default options
    requires_dilation: ClassVar[bool] = False
    #: ``True``: inputs of any size are padded (zeros, bottom and right) to the next multiple of
    #: ``input_divisor()`` and the mask is cropped back, so it always matches the input; sizes
    #: that are already multiples go through untouched (identical to SMP). Set it to ``False``
    #: on a model for SMP's strict behaviour: ``InputShapeError`` for other sizes.
    pad_inputs: bool = True
    # TorchScript (torch.jit.script) reads ``_padding_divisor`` once, when it compiles the
    # model, and compiles no property of the Python API.
    __constants__ = ["_padding_divisor"]
    __jit_unused_properties__ = ["config", "_padding_divisor"]

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
        from segcore.factory import get_encoder, get_encoder_spec

        name = self.architecture or type(self).__name__
        check_depth(encoder_depth, range(self.min_encoder_depth, 6), needed_by=name)
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
        #: the spec of the encoder (capabilities such as ``deepest_feature_pooled``), for
        #: ``build_decoder``
        self.encoder_spec = get_encoder_spec(encoder_name)

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
        """Raise ``InputShapeError`` naming the fix when ``x`` cannot go through the model.

        ``x`` must be a ``torch.Tensor`` (else ``InputTypeError``) of shape ``(N, C, H, W)``
        with ``C = in_channels``, ``H, W`` divisible by the output stride when the architecture
        needs it, and at least the smallest size the model takes once a failed forward pass
        has found it. Only shapes are read.
        """
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(_not_a_tensor_message(x, self._in_channels))
        if x.dim() != 4:
            raise InputShapeError(_wrong_rank_message(tuple(x.shape), self._in_channels))
        if x.shape[1] != self._in_channels:
            raise InputShapeError(_wrong_channels_message(tuple(x.shape), self._in_channels))
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if height < 1 or width < 1:
            raise InputShapeError(
                f"the input has no pixels: shape {tuple(x.shape)}, height x width "
                f"{height}x{width}. The model takes (N, {self._in_channels}, H, W) with H and W "
                f"at least 1; check how the images were loaded or cropped."
            )
        stride = self.input_divisor()
        if not self.pad_inputs and (height % stride or width % stride):
            up = (_round_up(height, stride), _round_up(width, stride))
            nearest = (_round_nearest(height, stride), _round_nearest(width, stride))
            raise InputShapeError(
                f"{self.architecture or type(self).__name__} needs height and width divisible "
                f"by {stride}, got {height}x{width}. The nearest valid size is "
                f"{nearest[0]}x{nearest[1]}; pad the images to {up[0]}x{up[1]} (or resize/crop), "
                f"or set model.pad_inputs = True to let the model pad and crop."
            )
        # Encoders with unpadded layers (convnext's 4x4 stride-4 stem) refuse tiny inputs: the
        # first forward pass that fails finds the smallest size; later inputs are checked here.
        smallest = self.__dict__.get("_smallest_input_size")
        if smallest is not None and _effective_size(self, height, width) < smallest:
            raise InputShapeError(_too_small_message(self, height, width, smallest))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if torch.jit.is_scripting():
            # TorchScript compiles only this branch: no input checks (Python-only), and the
            # padding multiple is a constant read when the model is scripted.
            return self._run(x, self._padding_divisor)
        else:
            return self._checked_run(x)

    @torch.jit.unused
    def _checked_run(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``forward`` outside TorchScript: input checks in eager mode, none while traced,
        compiled or exported (they only read shapes, but would add guards)."""
        if _compiling():
            return self._run(x, self._padding_divisor)
        self.check_input_shape(x)
        _check_input_dtype(self, x)
        try:
            return self._run(x, self._padding_divisor)
        except (RuntimeError, ValueError) as error:
            _explain_forward_failure(self, x, error)
            raise

    def _run(
        self, x: torch.Tensor, divisor: int
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Pad ``x`` to a multiple of ``divisor`` (1: none), encoder, decoder, heads, crop."""
        height, width = x.shape[-2], x.shape[-1]
        padding = divisor > 1
        inputs = _pad_to_multiple(x, divisor) if padding else x
        features = self.encoder(inputs)
        decoder_output = self.decoder(features)
        masks = self.segmentation_head(decoder_output)
        if padding:
            masks = _crop_to_input(masks, height, width, inputs.shape[-2], inputs.shape[-1])
        if self.classification_head is not None:
            labels = self.classification_head(features[-1])
            return masks, labels
        return masks

    @property
    def _padding_divisor(self) -> int:
        """What ``forward`` pads height and width to a multiple of; 1 for no padding."""
        divisor = self.input_divisor()
        return divisor if self.pad_inputs and divisor > 1 else 1

    def check_input_dtype(self, x: torch.Tensor) -> None:
        """Raise ``InputTypeError`` naming the fix when ``x``'s dtype does not fit the model
        (``x.float() / 255`` for uint8 images, ...); float16/bfloat16 pass under autocast."""
        _check_input_dtype(self, x)

    def input_divisor(self) -> int:
        """What height and width must be multiples of: the encoder's output stride for
        architectures that need divisible sizes, else 1. ``forward`` pads to it (see
        ``pad_inputs``); architectures with other needs (a ViT's patch size) override it."""
        if not self.requires_divisible_input_shape:
            return 1
        return int(self.encoder.output_stride)

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
    from segcore.factory import build

    arguments = dict(config)
    if "encoder_weights" in arguments:
        raise InvalidOptionError(
            "a model config never carries 'encoder_weights' (from_config builds random "
            "weights; from_pretrained loads the saved ones): remove the key"
        )
    architecture = arguments.pop("architecture")
    encoder = arguments.pop("encoder_name")
    encoder_params = arguments.pop("encoder_params", None) or {}
    if not isinstance(encoder_params, Mapping):
        raise InvalidOptionError(
            f"encoder_params must be a mapping of encoder options, got {encoder_params!r}"
        )
    if activation is not None:
        arguments["activation"] = activation
    return build(architecture, encoder=encoder, encoder_weights=None, **arguments,
                 **encoder_params)


def _read_config(config_path: Path) -> dict[str, Any]:
    """``config.json`` of a saved model, checked, or ``WeightsFileError`` naming the file."""
    from segcore.errors import WeightsFileError

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise WeightsFileError(
            f"{str(config_path)!r} is not readable JSON ({type(error).__name__}: {error}); it "
            f"must be the config.json written by model.save_pretrained()."
        ) from None
    if not isinstance(config, dict):
        raise WeightsFileError(
            f"{str(config_path)!r} holds a JSON {type(config).__name__}, expected an object "
            f"with 'architecture', 'encoder_name' and the model's options (as written by "
            f"model.save_pretrained())."
        )
    missing = [key for key in ("architecture", "encoder_name") if key not in config]
    if missing:
        raise WeightsFileError(
            f"{str(config_path)!r} lacks the key(s) {', '.join(map(repr, missing))}; it must be "
            f"the config.json written by model.save_pretrained()."
        )
    if "encoder_weights" in config:
        raise WeightsFileError(
            f"{str(config_path)!r} has an 'encoder_weights' key: a saved model carries its own "
            f"weights (model.safetensors) and never downloads or reads others. Remove the key."
        )
    for key in ("architecture", "encoder_name"):
        if not isinstance(config[key], str):
            raise WeightsFileError(
                f"{str(config_path)!r}: {key!r} must be a string, got {config[key]!r}"
            )
    encoder_params = config.get("encoder_params") or {}
    if not isinstance(encoder_params, dict):
        raise WeightsFileError(
            f"{str(config_path)!r}: 'encoder_params' must be an object, got "
            f"{type(encoder_params).__name__}"
        )
    return config


def from_pretrained(directory: str | os.PathLike[str]) -> SegmentationModel:
    """Load a model saved with ``save_pretrained`` (``config.json`` + ``model.safetensors``).

    Nothing in the folder can make code run: the config is validated (no weights, no file
    paths or loader options for the encoder) and weights are read with safetensors.
    """
    from segcore.errors import WeightsNotFoundError
    from segcore.weights import load_into, load_state_dict

    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise WeightsNotFoundError(
            f"{str(directory)!r} has no {CONFIG_FILE}; it must be a directory written by "
            f"model.save_pretrained()."
        )
    model = from_config(_read_config(config_path))
    load_into(model, load_state_dict(directory / WEIGHTS_FILE), f"weights in {directory}")
    return model


# -- input checks (eager mode only; shapes and dtypes, never tensor values) -------------------
#: dtypes that autocast runs in; an input in one of them may differ from the parameters' dtype
#: while autocast is on for its device
_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
#: the largest size the smallest-input search tries; a failure of a larger input is not blamed
#: on its size
_PROBE_LIMIT = 512
_BATCHNORM_ONE_VALUE = "Expected more than 1 value per channel when training"


def _conversion(dtype: torch.dtype) -> str:
    """The tensor method that converts to ``dtype``: ``x.float()``, ``x.half()``..."""
    methods = {torch.float32: "x.float()", torch.float64: "x.double()",
               torch.float16: "x.half()", torch.bfloat16: "x.bfloat16()"}
    return methods.get(dtype, f"x.to({dtype})")


def _model_conversion(dtype: torch.dtype) -> str:
    methods = {torch.float32: "model.float()", torch.float64: "model.double()",
               torch.float16: "model.half()", torch.bfloat16: "model.bfloat16()"}
    return methods.get(dtype, f"model.to({dtype})")


def _autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except (RuntimeError, TypeError, ValueError):  # a device type autocast does not know
        return False


def _check_input_dtype(model: nn.Module, x: torch.Tensor) -> None:
    """Raise ``InputTypeError`` unless ``x`` has the dtype of the model's first parameter.

    A float16/bfloat16/float32 input may differ from the parameters while autocast is on for
    the input's device (autocast casts both).
    """
    parameter = next(model.parameters(), None)
    if parameter is None or x.dtype == parameter.dtype:
        return
    expected, actual = parameter.dtype, x.dtype
    if (actual in _AUTOCAST_DTYPES and expected in _AUTOCAST_DTYPES
            and _autocast_enabled(x.device.type)):
        return
    raise InputTypeError(_dtype_message(actual, expected, x.device.type))


def _dtype_message(actual: torch.dtype, expected: torch.dtype, device_type: str) -> str:
    name = str(expected).removeprefix("torch.")
    head = (f"the input is {str(actual).removeprefix('torch.')} but the model computes in {name} "
            f"(the dtype of its parameters).")
    convert = _conversion(expected)
    preprocessing = ("segcore.get_preprocessing_fn(encoder_name) scales and normalises images "
                     "as the encoder's weights expect")
    if actual == torch.uint8:
        return (f"{head} An 8-bit image must be converted and scaled: {convert} / 255, then "
                f"normalised ({preprocessing}).")
    if actual == torch.bool:
        return f"{head} Convert the boolean tensor with {convert}."
    if actual.is_complex:
        return (f"{head} The model takes real values: use x.real or x.abs(), then {convert}.")
    if not actual.is_floating_point:
        return (f"{head} Convert integer images with {convert} and scale them to the range the "
                f"weights expect (x.float() / 65535 for 16-bit images; {preprocessing}).")
    if actual == torch.float64 or not expected.is_floating_point:
        return (f"{head} Convert the input with {convert}, or the model with "
                f"{_model_conversion(actual)}.")
    return (f"{head} Convert the input with {convert}, convert the model with "
            f"{_model_conversion(actual)}, or run it under mixed precision with "
            f"torch.autocast({device_type!r}, dtype={actual}).")


def _not_a_tensor_message(x: object, in_channels: int) -> str:
    wanted = f"a torch.Tensor of shape (N, {in_channels}, H, W)"
    kind = type(x).__name__
    shape = getattr(x, "shape", None)
    if type(x).__module__ == "numpy" and shape is not None:
        return (f"expected {wanted}, got a numpy array of shape {tuple(shape)} and dtype "
                f"{getattr(x, 'dtype', '?')}. Convert it with "
                f"{_numpy_conversion(tuple(shape), str(getattr(x, 'dtype', '')), in_channels)}.")
    if x is None:
        return f"expected {wanted}, got None."
    if isinstance(x, str | bytes | os.PathLike):
        return (f"expected {wanted}, got a {kind} ({x!r}): load the image first (e.g. "
                f"numpy.asarray(PIL.Image.open(path))), then convert it with "
                f"torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255.")
    if isinstance(x, list | tuple):
        return (f"expected {wanted}, got a {kind} of {len(x)} item(s). Stack (C, H, W) image "
                f"tensors into a batch with torch.stack(images), or convert an array with "
                f"torch.as_tensor(...).")
    return (f"expected {wanted}, got {kind}. Convert it to a tensor (torch.as_tensor, or "
            f"torch.from_numpy(numpy.asarray(image)).permute(2, 0, 1).unsqueeze(0) for an "
            f"(H, W, C) image).")


def _numpy_conversion(shape: tuple[int, ...], dtype: str, in_channels: int) -> str:
    """The expression that turns a numpy array of ``shape`` into an ``(N, C, H, W)`` tensor."""
    code = "torch.from_numpy(array)"
    if len(shape) == 3 and shape[-1] == in_channels:
        code += ".permute(2, 0, 1).unsqueeze(0)"
    elif len(shape) == 3 and shape[0] == in_channels:
        code += ".unsqueeze(0)"
    elif len(shape) == 4 and shape[-1] == in_channels and shape[1] != in_channels:
        code += ".permute(0, 3, 1, 2)"
    elif len(shape) == 2 and in_channels == 1:
        code += "[None, None]"
    elif len(shape) != 4:
        code += f" reshaped to (N, {in_channels}, H, W)"
    if dtype == "uint8":
        code += ".float() / 255"
    elif dtype != "float32":
        code += ".float()"
    return code


def _wrong_rank_message(shape: tuple[int, ...], in_channels: int) -> str:
    head = (f"expected a 4D tensor (N, C, H, W) with C = in_channels = {in_channels}, got a "
            f"{len(shape)}D tensor of shape {shape}.")
    if len(shape) == 3 and shape[0] == in_channels:
        return (f"{head} It looks like one (C, H, W) image: add a batch dimension with "
                f"x.unsqueeze(0).")
    if len(shape) == 3 and shape[-1] == in_channels:
        return (f"{head} It looks like one channels-last (H, W, C) image: use "
                f"x.permute(2, 0, 1).unsqueeze(0).")
    if len(shape) == 3 and in_channels == 1:
        return (f"{head} It looks like a batch of single-channel (N, H, W) images: add the "
                f"channel dimension with x.unsqueeze(1).")
    if len(shape) == 2 and in_channels == 1:
        return f"{head} It looks like one (H, W) image: use x[None, None]."
    if len(shape) == 2:
        return (f"{head} A 2D (H, W) image has one channel; the model takes {in_channels}: "
                f"build it with in_channels=1 (then use x[None, None]), or give it "
                f"{in_channels}-channel images.")
    if len(shape) == 5 and shape[0] == 1 and shape[2] == in_channels:
        return f"{head} Remove the extra leading dimension with x.squeeze(0)."
    if len(shape) == 5 and shape[2] == in_channels:
        return (f"{head} For a (N, T, C, H, W) stack of frames or slices, fold T into the batch "
                f"with x.flatten(0, 1) (the model is 2D).")
    if len(shape) == 5 and shape[1] == in_channels:
        return (f"{head} The model is 2D: for a (N, C, D, H, W) volume, process its slices as a "
                f"batch with x.permute(0, 2, 1, 3, 4).flatten(0, 1).")
    return f"{head} Reshape the input to (N, {in_channels}, H, W)."


def _wrong_channels_message(shape: tuple[int, ...], in_channels: int) -> str:
    message = (f"the model takes {in_channels} input channel(s) (in_channels={in_channels}), got "
               f"{shape[1]} (input shape {shape}; expected (N, {in_channels}, H, W)).")
    if shape[-1] == in_channels:
        return (f"{message} The input looks channels-last (N, H, W, C): use "
                f"x.permute(0, 3, 1, 2).")
    return (f"{message} Build the model with in_channels={shape[1]}, or convert the images to "
            f"{in_channels} channel(s).")


def _effective_size(model: SegmentationModel, height: int, width: int) -> int:
    """The smaller side of the input as the layers see it (after padding, when it is on)."""
    side = min(height, width)
    unit = model.input_divisor()
    if model.pad_inputs and unit > 1:
        return _round_up(side, unit)
    return side


def _too_small_message(model: SegmentationModel, height: int, width: int, smallest: int) -> str:
    unit = model.input_divisor()
    padded = model.pad_inputs and unit > 1
    least = smallest - unit + 1 if padded else smallest
    how = (f" (inputs are padded to multiples of {unit}, so {least} pads to {smallest})"
           if padded and least != smallest else "")
    return (
        f"{getattr(model, 'name', type(model).__name__)}: a {height}x{width} input is too small; "
        f"the smallest height and width this model can take are {least}x{least}{how}: its "
        f"strided, pooling or unpadded layers leave no pixels below that. Resize or pad the "
        f"images to at least {least}x{least}."
    )


def _explain_forward_failure(model: SegmentationModel, x: torch.Tensor, error: Exception) -> None:
    """Raise ``InputShapeError`` when ``error`` came from the size of ``x``; else return.

    Called only in eager mode, after a forward pass failed.
    """
    if isinstance(error, torch.OutOfMemoryError) or x.dim() != 4:
        return
    batch, height, width = int(x.shape[0]), int(x.shape[-2]), int(x.shape[-1])
    if model.training and _BATCHNORM_ONE_VALUE in str(error):
        stride = int(model.encoder.output_stride)
        deepest = f"{-(-height // stride)}x{-(-width // stride)}"
        raise InputShapeError(
            f"in training mode, batch normalisation needs more than one value per channel, but "
            f"a batch of {batch} image(s) of {height}x{width} leaves a single one in a layer "
            f"(the deepest features are {deepest} at stride {stride}; pooling branches are "
            f"1x1). Train with at least 2 images per batch (DataLoader(..., drop_last=True) "
            f"avoids a last batch of one), use larger images, or call model.eval() for "
            f"inference."
        ) from error
    if min(height, width) >= _PROBE_LIMIT:
        return
    smallest = _smallest_input_size(model)
    if smallest is not None and _effective_size(model, height, width) < smallest:
        raise InputShapeError(_too_small_message(model, height, width, smallest)) from error


def _smallest_input_size(model: SegmentationModel) -> int | None:
    """The smallest square size (a multiple of the output stride when the architecture needs
    it) that goes through the model, or ``None`` when none up to ``_PROBE_LIMIT`` does.

    Found once, after a forward pass failed, by running the model in eval mode without
    gradients on growing zero inputs (normalisation statistics do not change; forward hooks
    see these calls), then cached on the model for ``check_input_shape``.
    """
    cached = model.__dict__.get("_smallest_input_size", ...)
    if cached is not ...:
        return cached
    unit = model.input_divisor()
    modes = [(module, module.training) for module in model.modules()]
    try:
        for module, _ in modes:
            module.training = False
        with torch.no_grad():
            smallest = _search_smallest(lambda k: _runs(model, unit * k), _PROBE_LIMIT // unit)
    finally:
        for module, mode in modes:
            module.training = mode
    result = None if smallest is None else unit * smallest
    model.__dict__["_smallest_input_size"] = result
    return result


def _search_smallest(runs: Callable[[int], bool], limit: int) -> int | None:
    """The smallest ``k`` in ``1..limit`` with ``runs(k)``, assuming larger ``k`` also run.

    Doubles ``k`` until it runs, tries one less (strided networks mostly need a power of
    two), then bisects.
    """
    low, high = 0, 1  # runs(low) is False (or low is 0); runs(high) is to be found True
    while not runs(high):
        if high >= limit:
            return None
        low, high = high, min(2 * high, limit)
    if high - low > 1:
        if not runs(high - 1):
            return high
        high -= 1
    while high - low > 1:
        middle = (low + high) // 2
        if runs(middle):
            high = middle
        else:
            low = middle
    return high


def _runs(model: SegmentationModel, size: int) -> bool:
    """Whether a ``size`` x ``size`` input goes through encoder, decoder and head."""
    parameter = next(model.parameters(), None)
    x = torch.zeros(
        1, model._in_channels, size, size,
        dtype=parameter.dtype if parameter is not None else None,
        device=parameter.device if parameter is not None else None,
    )
    try:
        model.segmentation_head(model.decoder(model.encoder(x)))
    except Exception:  # any failure means "not at this size"
        return False
    return True


def _pad_to_multiple(x: torch.Tensor, divisor: int) -> torch.Tensor:
    """Zero-pad the bottom and right of ``x`` so height and width are multiples of ``divisor``."""
    pad_height = (divisor - x.shape[-2] % divisor) % divisor
    pad_width = (divisor - x.shape[-1] % divisor) % divisor
    return torch.nn.functional.pad(x, (0, pad_width, 0, pad_height))


def _crop_to_input(
    masks: torch.Tensor, height: int, width: int, padded_height: int, padded_width: int
) -> torch.Tensor:
    """The part of ``masks`` that covers the unpadded input.

    The mask may have another scale than the input (FPN at depth 4 gives 2H x 2W, as in SMP):
    the crop keeps that scale.
    """
    keep_height = masks.shape[-2] * height // padded_height
    keep_width = masks.shape[-1] * width // padded_width
    return masks[..., :keep_height, :keep_width]
