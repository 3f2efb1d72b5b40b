"""Bad model inputs, build arguments, activations and preprocessing misuse (items 7.12-7.14).

Model rows use the conformance kit's tiny encoder where the encoder does not matter (fast),
``resnet18`` and ``tu-convnext_atto`` where it does. Built models are cached per module (rows
only run them in eval mode; rows that train or convert a model build their own).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import torch
from catalogue import Case, Context
from torch import nn

from segcore.errors import (
    InputShapeError,
    InputTypeError,
    InvalidOptionError,
    UnknownNameError,
    UnknownOptionError,
)

TINY = "segcore-testing-tiny"
UNET = ("segcore_unet",)
DEEPLAB = ("segcore_deeplab",)
RESNET = ("segcore_resnet",)
TIMM = ("segcore_timm", "timm")
ARCHITECTURES = {"unet": "Unet", "deeplabv3plus": "DeepLabV3Plus", "deeplabv3": "DeepLabV3"}
REQUIRES = {"unet": UNET, "deeplabv3plus": DEEPLAB, "deeplabv3": DEEPLAB}


def _build(architecture: str, encoder: str = TINY, **options: Any) -> nn.Module:
    """A fresh model in eval mode (random weights)."""
    import segcore
    from segcore import testing

    model_class = getattr(segcore, ARCHITECTURES[architecture])
    if encoder == TINY:
        with testing.tiny_encoder_installed():
            return model_class(encoder, encoder_weights=None, **options).eval()
    return model_class(encoder, encoder_weights=None, **options).eval()


@functools.cache
def _cached(architecture: str, encoder: str = TINY, in_channels: int = 3) -> nn.Module:
    return _build(architecture, encoder, in_channels=in_channels)


def _requires(architecture: str, encoder: str) -> tuple[str, ...]:
    extra = RESNET if encoder.startswith("resnet") else TIMM if encoder.startswith("tu-") else ()
    return REQUIRES[architecture] + extra


def _forward(architecture: str, make_input: Callable[[], Any], encoder: str = TINY,
             in_channels: int = 3, method: str = "forward", train: bool = False,
             convert: Callable[[nn.Module], nn.Module] | None = None,
             pad_inputs: bool = True) -> Callable[[Context], Any]:
    """A row's call: run a model (``forward``, ``predict`` or ``check_input_shape``) on an input."""

    def call(context: Context) -> Any:
        if train or convert is not None:  # a model of its own
            model = _build(architecture, encoder, in_channels=in_channels)
            model = convert(model) if convert is not None else model.train()
        else:
            model = _cached(architecture, encoder, in_channels)
        model.pad_inputs = pad_inputs
        if method == "check_input_shape":
            return model.check_input_shape(make_input())
        if method == "predict":
            return model.predict(make_input())
        return model(make_input())

    return call


def _zeros(*shape: int, dtype: torch.dtype = torch.float32) -> Callable[[], torch.Tensor]:
    return lambda: torch.zeros(shape, dtype=dtype)


def _convnext_too_small(suffix: str, height: int, width: int, words: tuple[str, ...],
                        note: str = "") -> Case:
    """Unet(tu-convnext_atto) forward on an image below its 32x32 minimum."""
    return Case(id=f"shape-too-small-unet-convnext-{suffix}", item="7.12",
                description=f"Unet(tu-convnext_atto) forward on {height}x{width}{note}",
                call=_forward("unet", _zeros(1, 3, height, width), encoder="tu-convnext_atto"),
                error=InputShapeError, words=words,
                requires=_requires("unet", "tu-convnext_atto"))


# -- 7.12: dtypes ------------------------------------------------------------------------------
DTYPES: list[tuple[str, torch.dtype, tuple[str, ...]]] = [
    ("uint8", torch.uint8, ("uint8", "float32", "x.float() / 255")),
    ("float64", torch.float64, ("float64", "float32", "x.float()", "model.double()")),
    ("float16", torch.float16, ("float16", "float32", "x.float()", "torch.autocast")),
    ("bfloat16", torch.bfloat16, ("bfloat16", "float32", "x.float()", "torch.autocast")),
    ("bool", torch.bool, ("bool", "float32", "x.float()")),
    ("complex64", torch.complex64, ("complex64", "float32", "x.real")),
    ("int64", torch.int64, ("int64", "float32", "x.float()")),
    ("int32", torch.int32, ("int32", "float32", "x.float()")),
    ("int16", torch.int16, ("int16", "float32", "x.float()")),
    ("int8", torch.int8, ("int8", "float32", "x.float()")),
]

DTYPE_ROWS = [
    Case(id=f"dtype-{label}-input-{architecture}", item="7.12",
         description=f"{architecture} forward on a tensor of dtype {label}",
         call=_forward(architecture, _zeros(1, 3, 64, 64, dtype=dtype)),
         error=InputTypeError, words=words, requires=REQUIRES[architecture])
    for architecture in ("unet", "deeplabv3plus")
    for label, dtype, words in DTYPES
] + [
    Case(id=f"dtype-{label}-input-unet-resnet18", item="7.12",
         description=f"Unet(resnet18) forward on a tensor of dtype {label}",
         call=_forward("unet", _zeros(1, 3, 64, 64, dtype=dtype), encoder="resnet18"),
         error=InputTypeError, words=words, requires=_requires("unet", "resnet18"))
    for label, dtype, words in DTYPES if label in ("uint8", "float64", "float16")
] + [
    Case(id="dtype-float32-input-double-model", item="7.12",
         description="float32 tensor into a model converted with model.double()",
         call=_forward("unet", _zeros(1, 3, 64, 64), convert=lambda m: m.double()),
         error=InputTypeError, words=("float32", "computes in float64", "x.double()"),
         requires=UNET),
    Case(id="dtype-float32-input-half-model", item="7.12",
         description="float32 tensor into a model converted with model.half()",
         call=_forward("unet", _zeros(1, 3, 64, 64), convert=lambda m: m.half()),
         error=InputTypeError, words=("computes in float16", "x.half()", "torch.autocast"),
         requires=UNET),
    Case(id="dtype-uint8-input-predict", item="7.12",
         description="model.predict on a uint8 image batch",
         call=_forward("unet", _zeros(2, 3, 64, 64, dtype=torch.uint8), method="predict"),
         error=InputTypeError, words=("uint8", "x.float() / 255"), requires=UNET),
]


def _autocast_float64(context: Context) -> Any:
    model = _cached("unet")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(torch.zeros(1, 3, 64, 64, dtype=torch.float64))


DTYPE_ROWS.append(
    Case(id="dtype-float64-input-under-autocast", item="7.12",
         description="float64 tensor under torch.autocast (autocast never casts float64)",
         call=_autocast_float64, error=InputTypeError, words=("float64", "x.float()"),
         requires=UNET)
)

# -- 7.12: not a tensor ------------------------------------------------------------------------
NOT_TENSORS: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
    ("numpy-hwc-uint8", lambda: numpy.zeros((64, 64, 3), numpy.uint8),
     ("numpy array of shape (64, 64, 3)",
      "torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255")),
    ("numpy-nchw-float64", lambda: numpy.zeros((2, 3, 64, 64)),
     ("numpy array", "torch.from_numpy(array).float()")),
    ("numpy-nhwc-float32", lambda: numpy.zeros((2, 64, 64, 3), numpy.float32),
     ("torch.from_numpy(array).permute(0, 3, 1, 2)",)),
    ("list-of-tensors", lambda: [torch.zeros(3, 64, 64), torch.zeros(3, 64, 64)],
     ("list of 2 item(s)", "torch.stack(images)")),
    ("tuple-of-tensors", lambda: (torch.zeros(3, 64, 64),), ("tuple", "torch.stack(images)")),
    ("none", lambda: None, ("got None",)),
    ("path-string", lambda: "images/0001.png", ("str ('images/0001.png')",
                                                "load the image first")),
    ("pathlib-path", lambda: Path("images/0001.png"), ("load the image first",)),
    ("python-float", lambda: 0.5, ("got float", "torch.as_tensor")),
]

NOT_TENSOR_ROWS = [
    Case(id=f"not-tensor-{label}-{method.replace('_', '-')}", item="7.12",
         description=f"{method} on a {label.replace('-', ' ')}",
         call=_forward("unet", make_input, method=method), error=InputTypeError,
         words=("expected a torch.Tensor of shape (N, 3, H, W)", *words), requires=UNET)
    for label, make_input, words in NOT_TENSORS
    for method in ("check_input_shape", "forward")
] + [
    Case(id="not-tensor-numpy-predict-deeplabv3plus", item="7.12",
         description="DeepLabV3Plus.predict on a numpy image",
         call=_forward("deeplabv3plus", lambda: numpy.zeros((64, 64, 3), numpy.uint8),
                       method="predict"),
         error=InputTypeError, words=("numpy array", "torch.from_numpy(array)"),
         requires=DEEPLAB),
]

# -- 7.12: shapes ------------------------------------------------------------------------------
SHAPES: list[tuple[str, tuple[int, ...], int, tuple[str, ...]]] = [
    ("3d-chw-image", (3, 64, 64), 3, ("add a batch dimension", "x.unsqueeze(0)")),
    ("3d-hwc-image", (64, 64, 3), 3, ("channels-last (H, W, C)",
                                      "x.permute(2, 0, 1).unsqueeze(0)")),
    ("5d-frames", (2, 4, 3, 64, 64), 3, ("(N, T, C, H, W)", "x.flatten(0, 1)")),
    ("nhwc-batch", (2, 64, 64, 3), 3, ("channels-last (N, H, W, C)", "x.permute(0, 3, 1, 2)")),
    ("wrong-channel-count", (2, 1, 64, 64), 3, ("takes 3 input channel(s)", "got 1",
                                                "in_channels=1")),
    ("zero-height", (1, 3, 0, 64), 3, ("no pixels", "0x64")),
    ("2d-grey-image-3-channel-model", (64, 64), 3,
     ("(N, C, H, W) with C = in_channels = 3", "in_channels=1")),
    ("2d-grey-image-1-channel-model", (64, 64), 1, ("x[None, None]",)),
    ("3d-grey-batch", (8, 64, 64), 1, ("(N, H, W)", "x.unsqueeze(1)")),
    ("3d-unknown-layout", (5, 64, 64), 3, ("(N, C, H, W) with C = in_channels = 3",
                                           "Reshape the input to (N, 3, H, W)")),
    ("5d-volume", (2, 3, 16, 64, 64), 3, ("(N, C, D, H, W)",
                                          "x.permute(0, 2, 1, 3, 4).flatten(0, 1)")),
    ("5d-extra-leading-dimension", (1, 2, 3, 64, 64), 3, ("x.squeeze(0)",)),
    ("1d", (3,), 3, ("1D tensor", "Reshape the input")),
    ("0d-scalar", (), 3, ("0D tensor", "(N, C, H, W)")),
    ("rgba-into-rgb-model", (2, 4, 64, 64), 3, ("takes 3 input channel(s)", "in_channels=4")),
    ("rgb-into-grey-model", (2, 3, 64, 64), 1, ("takes 1 input channel(s)", "in_channels=3")),
    ("zero-width", (1, 3, 64, 0), 3, ("no pixels", "64x0")),
]

def _check_after_failure(context: Context) -> None:
    """A failed forward pass finds the smallest size; check_input_shape then knows it."""
    model = _cached("unet", "tu-convnext_atto")
    try:
        model(torch.zeros(1, 3, 16, 16))
    except InputShapeError:
        pass
    model.check_input_shape(torch.zeros(1, 3, 8, 8))


SHAPE_ROWS = [
    Case(id=f"shape-{label}-{architecture}", item="7.12",
         description=f"{architecture} (in_channels={in_channels}) forward on shape {shape}",
         call=_forward(architecture, _zeros(*shape), in_channels=in_channels),
         error=InputShapeError, words=words, requires=REQUIRES[architecture])
    for architecture in ("unet", "deeplabv3plus")
    for label, shape, in_channels, words in SHAPES
    if architecture == "unet" or label in ("3d-chw-image", "5d-frames", "nhwc-batch",
                                           "zero-height", "2d-grey-image-3-channel-model")
] + [
    Case(id="shape-3d-chw-image-check-input-shape", item="7.12",
         description="check_input_shape on one (C, H, W) image",
         call=_forward("unet", _zeros(3, 64, 64), method="check_input_shape"),
         error=InputShapeError, words=("x.unsqueeze(0)",), requires=UNET),
    Case(id="shape-not-divisible-deeplabv3plus", item="7.12",
         description="DeepLabV3Plus with pad_inputs=False forward on 70x100 (multiples of 16)",
         call=_forward("deeplabv3plus", _zeros(1, 3, 70, 100), pad_inputs=False),
         error=InputShapeError,
         words=("divisible by 16", "70x100", "nearest valid size is 64x96",
                "pad the images to 80x112"), requires=DEEPLAB),
    Case(id="shape-not-divisible-deeplabv3-resnet18", item="7.12",
         description="DeepLabV3(resnet18) with pad_inputs=False forward on 100x100",
         call=_forward("deeplabv3", _zeros(1, 3, 100, 100), encoder="resnet18",
                       pad_inputs=False),
         error=InputShapeError, words=("divisible by", "100x100"),
         requires=_requires("deeplabv3", "resnet18")),
    _convnext_too_small("16px", 16, 16, ("16x16 input is too small", "32x32"),
                        note=" (its 4x4 stride-4 stem)"),
    _convnext_too_small("1px", 1, 1, ("too small", "at least 32x32")),
    _convnext_too_small("thin", 31, 256, ("31x256 input is too small", "32x32")),
    Case(id="shape-too-small-unet-convnext-check-input-shape", item="7.12",
         description="check_input_shape of Unet(tu-convnext_atto) on 8x8, after a failed call",
         call=_check_after_failure, error=InputShapeError, words=("too small", "32x32"),
         requires=_requires("unet", "tu-convnext_atto")),
    Case(id="shape-too-small-unet-resnet18-training-batch-of-one", item="7.12",
         description="Unet(resnet18) training step on one 32x32 image (1x1 deepest features)",
         call=_forward("unet", lambda: torch.randn(1, 3, 32, 32), encoder="resnet18",
                       train=True),
         error=InputShapeError,
         words=("training mode", "batch of 1", "at least 2 images", "model.eval()"),
         requires=_requires("unet", "resnet18")),
    Case(id="shape-training-batch-of-one-deeplabv3plus", item="7.12",
         description="DeepLabV3Plus training step on a batch of one (ASPP pooling branch)",
         call=_forward("deeplabv3plus", lambda: torch.randn(1, 3, 64, 64), train=True),
         error=InputShapeError, words=("training mode", "batch of 1", "drop_last=True"),
         requires=DEEPLAB),
]

# -- 7.13: activations -------------------------------------------------------------------------


class _NotAModule:
    """A class whose instances are not modules."""


ACTIVATIONS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("lambda-returning-int", lambda: 5, ("returned 5", "not a torch.nn.Module", "'sigmoid'")),
    ("lambda-returning-function", lambda: torch.sigmoid,
     ("not a torch.nn.Module", "torch.nn.ReLU")),
    ("class-not-a-module", _NotAModule, ("_NotAModule returned", "not a torch.nn.Module")),
    ("builtin-class", dict, ("dict returned {}", "'softmax'")),
    ("tensor-function", torch.sigmoid, ("cannot be called with no arguments", "torch.nn.ReLU")),
    ("module-class-needing-arguments", nn.Threshold,
     ("cannot be called with no arguments", "'sigmoid'")),
    ("unknown-name", "relu", ("unknown activation 'relu'", "'sigmoid'", "'tanh'")),
    ("misspelled-name", "sigmod", ("unknown activation 'sigmod'", "did you mean 'sigmoid'")),
    ("capitalised-name", "Softmax", ("did you mean 'softmax'",)),
    ("number", 5, ("unknown activation 5", "a callable returning a torch.nn.Module")),
]


def _build_call(architecture: str = "unet", encoder: str = TINY,
                **options: Any) -> Callable[[Context], Any]:
    return lambda context: _build(architecture, encoder, **options)


ACTIVATION_ROWS = [
    Case(id=f"activation-{label}", item="7.13",
         description=f"Unet(activation=...) with a {label.replace('-', ' ')}",
         call=_build_call(activation=activation), error=InvalidOptionError, words=words,
         requires=UNET)
    for label, activation, words in ACTIVATIONS
] + [
    Case(id=f"activation-aux-{label}", item="7.13",
         description=f"aux_params activation: a {label.replace('-', ' ')}",
         call=_build_call(aux_params={"classes": 2, "activation": activation}),
         error=InvalidOptionError, words=words, requires=UNET)
    for label, activation, words in ACTIVATIONS
    if label in ("lambda-returning-int", "unknown-name", "tensor-function")
] + [
    Case(id="activation-lambda-returning-int-deeplabv3plus", item="7.13",
         description="DeepLabV3Plus(activation=lambda: 5)",
         call=_build_call("deeplabv3plus", activation=lambda: 5), error=InvalidOptionError,
         words=("returned 5",), requires=DEEPLAB),
]

# -- 7.13: build arguments ---------------------------------------------------------------------
BUILD: list[tuple[str, dict[str, Any], type[Exception], tuple[str, ...]]] = [
    ("classes-zero", {"classes": 0}, InvalidOptionError, ("classes must be a positive int",)),
    ("classes-negative", {"classes": -1}, InvalidOptionError, ("positive int", "-1")),
    ("classes-float", {"classes": 1.5}, InvalidOptionError, ("positive int", "1.5")),
    ("classes-bool", {"classes": True}, InvalidOptionError, ("positive int", "True")),
    ("classes-string", {"classes": "3"}, InvalidOptionError, ("positive int", "'3'")),
    ("in-channels-zero", {"in_channels": 0}, InvalidOptionError,
     ("in_channels must be a positive int",)),
    ("in-channels-negative", {"in_channels": -3}, InvalidOptionError, ("positive int",)),
    ("in-channels-float", {"in_channels": 2.5}, InvalidOptionError, ("positive int", "2.5")),
    ("encoder-depth-zero", {"encoder_depth": 0}, InvalidOptionError,
     ("encoder_depth=0 is too small", "encoder_depth=3 to 5")),
    ("encoder-depth-too-large", {"encoder_depth": 6}, InvalidOptionError,
     ("encoder_depth=6 is too large", "encoder_depth=5 or less")),
    ("encoder-depth-below-decoder-minimum", {"encoder_depth": 2}, InvalidOptionError,
     ("needs at least 3 encoder stages",)),
    ("encoder-depth-string", {"encoder_depth": "5"}, InvalidOptionError,
     ("encoder_depth must be an int",)),
    ("aux-params-misspelled-key", {"aux_params": {"clases": 2}}, InvalidOptionError,
     ("unknown aux_params key", "'clases'", "'classes'")),
    ("aux-params-without-classes", {"aux_params": {"pooling": "avg"}}, InvalidOptionError,
     ("needs 'classes'",)),
    ("aux-params-classes-zero", {"aux_params": {"classes": 0}}, InvalidOptionError,
     ("aux_params['classes'] must be a positive int",)),
    ("aux-params-pooling-mean", {"aux_params": {"classes": 2, "pooling": "mean"}},
     InvalidOptionError, ("'avg' or 'max'", "'mean'")),
    ("aux-params-dropout-above-one", {"aux_params": {"classes": 2, "dropout": 1.5}},
     InvalidOptionError, ("[0, 1)", "1.5")),
    ("aux-params-dropout-string", {"aux_params": {"classes": 2, "dropout": "0.5"}},
     InvalidOptionError, ("[0, 1)",)),
    ("aux-params-not-a-dict", {"aux_params": [2]}, InvalidOptionError,
     ("must be a dict", "list")),
    ("decoder-channels-wrong-length", {"decoder_channels": (16, 8)}, InvalidOptionError,
     ("decoder_channels has 2 values", "needs 5")),
    ("decoder-option-misspelled", {"decoder_chanels": (16, 8, 8, 8, 8)}, UnknownOptionError,
     ("'decoder_chanels'", "did you mean 'decoder_channels'")),
]

BUILD_ROWS = [
    Case(id=f"build-{label}", item="7.13", description=f"Unet with {options}",
         call=_build_call(**options), error=error, words=words, requires=UNET)
    for label, options, error, words in BUILD
] + [
    Case(id="build-deeplabv3plus-output-stride-12", item="7.13",
         description="DeepLabV3Plus(encoder_output_stride=12)",
         call=_build_call("deeplabv3plus", encoder_output_stride=12), error=InvalidOptionError,
         words=("encoder_output_stride must be 8 or 16", "12"), requires=DEEPLAB),
    Case(id="build-deeplabv3plus-classes-zero", item="7.13",
         description="DeepLabV3Plus(classes=0)",
         call=_build_call("deeplabv3plus", classes=0), error=InvalidOptionError,
         words=("classes must be a positive int",), requires=DEEPLAB),
    Case(id="build-unet-misspelled-encoder", item="7.13",
         description="segcore.build('unet', encoder='resnet19')",
         call=lambda context: __import__("segcore").build("unet", encoder="resnet19"),
         error=UnknownNameError, words=("unknown encoder 'resnet19'", "did you mean 'resnet18'"),
         requires=UNET + RESNET),
]

# -- 7.14: preprocessing -----------------------------------------------------------------------
IMAGENET = {"input_space": "RGB", "input_range": [0.0, 1.0],
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _preprocess(make_image: Callable[[], Any], **arguments: Any) -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        from segcore.preprocessing import preprocess_input

        return preprocess_input(make_image(), **{**IMAGENET, **arguments})

    return call


def _preprocessing_fn(encoder: str, pretrained: str = "imagenet") -> Callable[[Context], Any]:
    def call(context: Context) -> Any:
        import segcore

        return segcore.get_preprocessing_fn(encoder, pretrained=pretrained)

    return call


def _resnet_preprocess_chw(context: Context) -> Any:
    import segcore

    preprocess = segcore.get_preprocessing_fn("resnet18", pretrained="imagenet")
    return preprocess(torch.zeros(3, 64, 64, dtype=torch.uint8))


PREPROCESSING: list[tuple[str, Callable[[Context], Any], type[BaseException], tuple[str, ...]]] = [
    ("list", _preprocess(lambda: [[0, 0, 0]]), InputTypeError, ("got list", "numpy.asarray")),
    ("string", _preprocess(lambda: "image.png"), InputTypeError,
     ("got a str", "load the image first")),
    ("none", _preprocess(lambda: None), InputTypeError, ("got none",)),
    ("bool-array", _preprocess(lambda: numpy.zeros((4, 4, 3), bool)), InputTypeError,
     ("dtype bool",)),
    ("complex-tensor", _preprocess(lambda: torch.zeros(4, 4, 3, dtype=torch.complex64)),
     InputTypeError, ("dtype complex64",)),
    ("chw-array-default-axis", _preprocess(lambda: numpy.zeros((3, 64, 64), numpy.uint8)),
     InvalidOptionError, ("last axis (the default)", "has 64 entries", "channel_axis=0")),
    ("nchw-tensor-default-axis", _preprocess(lambda: torch.zeros(2, 3, 8, 8)),
     InvalidOptionError, ("channel_axis=1",)),
    ("rgba-image", _preprocess(lambda: numpy.zeros((8, 8, 4), numpy.uint8)),
     InvalidOptionError, ("has 4 entries", "image[..., :3]")),
    ("grey-image", _preprocess(lambda: numpy.zeros((8, 8), numpy.uint8)),
     InvalidOptionError, ("no channel axis",)),
    ("axis-out-of-range", _preprocess(lambda: numpy.zeros((8, 8, 3)), channel_axis=3),
     InvalidOptionError, ("channel_axis=3 does not exist",)),
    ("axis-not-an-int", _preprocess(lambda: numpy.zeros((8, 8, 3)), channel_axis="last"),
     InvalidOptionError, ("channel_axis must be an int",)),
    ("axis-misspelled", _preprocess(lambda: numpy.zeros((8, 8, 3)), axis=0),
     InvalidOptionError, ("'axis'", "channel_axis=")),
    ("input-space-lowercase", _preprocess(lambda: numpy.zeros((8, 8, 3)), input_space="rgb"),
     InvalidOptionError, ("'RGB' or 'BGR'",)),
    ("input-range-reversed", _preprocess(lambda: numpy.zeros((8, 8, 3)), input_range=[1, 0]),
     InvalidOptionError, ("low < high",)),
    ("mean-std-length-mismatch", _preprocess(lambda: numpy.zeros((8, 8, 3)), mean=[0.5, 0.5]),
     InvalidOptionError, ("one value per channel", "2 and 3")),
    ("std-zero", _preprocess(lambda: numpy.zeros((8, 8, 3)), std=[0.2, 0.0, 0.2]),
     InvalidOptionError, ("std must not contain 0",)),
    ("mean-string", _preprocess(lambda: numpy.zeros((8, 8, 3)), mean="imagenet"),
     InvalidOptionError, ("mean must be a sequence of numbers",)),
    ("float-image-in-0-255", _preprocess(lambda: numpy.full((8, 8, 3), 200.0)), UserWarning,
     ("values reach 200", "uint8")),
    ("ambiguous-chw-width-3", _preprocess(lambda: numpy.zeros((3, 10, 3), numpy.float32)),
     UserWarning, ("channels-last or channels-first", "channel_axis=0")),
]

PREPROCESSING_ROWS = [
    Case(id=f"preprocess-{label}", item="7.14", description=f"preprocess_input: {label}",
         call=call, error=error, words=words)
    for label, call, error, words in PREPROCESSING
] + [
    Case(id="preprocess-resnet18-fn-on-chw-tensor", item="7.14",
         description="get_preprocessing_fn('resnet18') on a (3, H, W) tensor",
         call=_resnet_preprocess_chw, error=InvalidOptionError,
         words=("channel_axis=0",), requires=RESNET),
    Case(id="preprocess-unknown-encoder", item="7.14",
         description="get_preprocessing_fn('resnet19')",
         call=_preprocessing_fn("resnet19"), error=UnknownNameError,
         words=("unknown encoder 'resnet19'",), requires=RESNET),
]

CASES: list[Case] = [
    *DTYPE_ROWS,
    *NOT_TENSOR_ROWS,
    *SHAPE_ROWS,
    *ACTIVATION_ROWS,
    *BUILD_ROWS,
    *PREPROCESSING_ROWS,
]
