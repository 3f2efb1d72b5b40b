"""What ``SegmentationModel`` does with inputs it cannot take: wrong types, dtypes, shapes, sizes.

Core only: a small architecture defined here runs on the conformance kit's tiny encoder.
"""

from __future__ import annotations

import attrs
import numpy
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import segcore
import segcore.model
from segcore import nn as segnn
from segcore import options as opt
from segcore import testing
from segcore.errors import InputShapeError, InputTypeError, InvalidOptionError, SegcoreError
from segcore.model import SegmentationModel
from segcore.options import ArchitectureOptions
from segcore.specs import ArchitectureSpec


@attrs.frozen
class AnySizeOptions(ArchitectureOptions):
    decoder_channels: int = attrs.field(default=8, validator=opt.positive_int)


class AnySizeNet(SegmentationModel):
    """One conv on the deepest features, interpolated back to the input size (any H, W)."""

    architecture = "anysize"
    options_class = AnySizeOptions
    requires_divisible_input_shape = False

    def __init__(self, encoder_name=testing.TINY_ENCODER, encoder_depth=5, encoder_weights=None,
                 in_channels=3, classes=1, activation=None, aux_params=None, **kwargs):
        super().__init__(encoder_name=encoder_name, encoder_depth=encoder_depth,
                         encoder_weights=encoder_weights, in_channels=in_channels,
                         classes=classes, activation=activation, aux_params=aux_params,
                         **kwargs)

    def build_decoder(self, encoder_channels, options):
        return _ToInputSize(encoder_channels[-1], options.decoder_channels)

    def segmentation_head_options(self, options):
        return {"in_channels": options.decoder_channels, "kernel_size": 1, "upsampling": 1}


class DivisibleNet(AnySizeNet):
    architecture = "divisible"
    requires_divisible_input_shape = True


class _ToInputSize(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = segnn.Conv2dReLU(in_channels, out_channels, 1)

    def forward(self, features):
        return F.interpolate(self.conv(features[-1]), size=features[0].shape[-2:])


SPECS = [
    ArchitectureSpec(name="anysize", model=AnySizeNet, description="test, any size"),
    ArchitectureSpec(name="divisible", model=DivisibleNet, description="test, divisible sizes"),
]


@pytest.fixture
def installed(core_only):
    with testing.specs_installed(encoders=[testing.TINY_ENCODER_SPEC], architectures=SPECS):
        yield


def build(architecture="anysize", **kwargs):
    return segcore.build(architecture, encoder=testing.TINY_ENCODER, **kwargs).eval()


def unpadded(model):
    """Remove the padding of the tiny encoder's 3x3 stride-2 convs: at depth 3 (output stride
    8) it then needs 15x15."""
    for module in model.encoder.modules():
        if isinstance(module, nn.Conv2d):
            module.padding = (0, 0)
    return model


def test_input_type_error_is_a_segcore_type_error():
    assert issubclass(InputTypeError, SegcoreError) and issubclass(InputTypeError, TypeError)


# -- dtypes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "words"),
    [
        (torch.uint8, ["uint8", "x.float() / 255"]),
        (torch.int64, ["int64", "x.float()", "65535"]),
        (torch.int32, ["int32", "x.float()"]),
        (torch.bool, ["bool", "x.float()"]),
        (torch.float64, ["float64", "x.float()", "model.double()"]),
        (torch.complex64, ["complex64", "x.real"]),
        (torch.float16, ["float16", "x.float()", "model.half()", "torch.autocast('cpu'"]),
        (torch.bfloat16, ["bfloat16", "x.float()", "torch.autocast"]),
    ],
)
def test_wrong_dtype_names_the_expected_dtype_and_the_fix(installed, dtype, words):
    model = build()
    with pytest.raises(InputTypeError) as error:
        model(torch.zeros(1, 3, 32, 32, dtype=dtype))
    message = str(error.value)
    assert "model computes in float32" in message
    for word in words:
        assert word in message, message


def test_expected_dtype_is_the_parameters_dtype(installed):
    model = build().double()
    assert model(torch.zeros(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(InputTypeError, match=r"computes in float64.*x\.double\(\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_half_precision_input_is_allowed_under_autocast(installed):
    model = build()
    x = torch.zeros(1, 3, 32, 32, dtype=torch.bfloat16)
    with pytest.raises(InputTypeError):
        model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x).shape == (1, 1, 32, 32)
        # float64 is never autocast: still refused
        with pytest.raises(InputTypeError, match="float64"):
            model(torch.zeros(1, 3, 32, 32, dtype=torch.float64))


# -- not a tensor ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "words"),
    [
        (numpy.zeros((32, 32, 3), numpy.uint8),
         ["numpy array of shape (32, 32, 3)",
          "torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255"]),
        (numpy.zeros((2, 3, 32, 32), numpy.float32), ["torch.from_numpy(array)."]),
        ([torch.zeros(3, 32, 32)], ["list of 1 item", "torch.stack(images)"]),
        (None, ["got None"]),
        ("image.png", ["str ('image.png')", "load the image first"]),
    ],
)
def test_check_input_shape_refuses_what_is_not_a_tensor(installed, value, words):
    model = build()
    for check in (model.check_input_shape, model, model.predict):
        with pytest.raises(InputTypeError) as error:
            check(value)
        message = str(error.value)
        assert "expected a torch.Tensor of shape (N, 3, H, W)" in message
        for word in words:
            assert word in message, message


# -- shapes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "in_channels", "fix"),
    [
        ((3, 32, 32), 3, "x.unsqueeze(0)"),
        ((32, 32, 3), 3, "x.permute(2, 0, 1).unsqueeze(0)"),
        ((8, 32, 32), 1, "x.unsqueeze(1)"),
        ((32, 32), 1, "x[None, None]"),
        ((32, 32), 3, "in_channels=1"),
        ((5, 32, 32), 3, "Reshape the input to (N, 3, H, W)"),
        ((2, 4, 3, 32, 32), 3, "x.flatten(0, 1)"),
        ((2, 3, 4, 32, 32), 3, "x.permute(0, 2, 1, 3, 4).flatten(0, 1)"),
        ((1, 1, 3, 32, 32), 3, "x.squeeze(0)"),
        ((3,), 3, "Reshape the input"),
    ],
)
def test_wrong_rank_says_what_the_shape_must_be(installed, shape, in_channels, fix):
    model = build(in_channels=in_channels)
    with pytest.raises(InputShapeError) as error:
        model(torch.zeros(shape))
    message = str(error.value)
    assert f"(N, C, H, W) with C = in_channels = {in_channels}" in message
    assert fix in message, message
    # a batch dimension is only suggested for a (C, H, W) image of in_channels channels
    assert ("add a batch dimension" in message) == (len(shape) == 3 and shape[0] == in_channels)


def test_channels_last_batch_and_wrong_channel_count(installed):
    model = build()
    with pytest.raises(InputShapeError, match=r"x\.permute\(0, 3, 1, 2\)"):
        model(torch.zeros(2, 32, 32, 3))
    with pytest.raises(InputShapeError, match="in_channels=4"):
        model(torch.zeros(2, 4, 32, 32))


@pytest.mark.parametrize("shape", [(1, 3, 0, 32), (1, 3, 32, 0)])
def test_empty_images_are_refused(installed, shape):
    with pytest.raises(InputShapeError, match="no pixels"):
        build()(torch.zeros(shape))


def test_empty_batch_goes_through(installed):
    assert build()(torch.zeros(0, 3, 32, 32)).shape == (0, 1, 32, 32)


# -- the smallest size -----------------------------------------------------------------------
def test_too_small_input_names_the_smallest_size_then_is_refused_before_running(installed):
    model = unpadded(build(encoder_depth=3)).train()
    with pytest.raises(InputShapeError, match=r"4x6 input is too small.*15x15") as error:
        model(torch.randn(2, 3, 4, 6))
    assert isinstance(error.value.__cause__, RuntimeError)  # torch's error is kept as cause
    assert model.training and all(module.training for module in model.modules())
    bn = model.encoder.stages[0][1]
    before = bn.running_mean.clone()
    with pytest.raises(InputShapeError, match=r"10x100 input is too small.*15x15") as error:
        model(torch.randn(2, 3, 10, 100))
    assert error.value.__cause__ is None  # refused by the check: nothing ran
    torch.testing.assert_close(bn.running_mean, before)
    with pytest.raises(InputShapeError, match="15x15"):
        model.check_input_shape(torch.randn(2, 3, 14, 14))
    assert model(torch.randn(2, 3, 15, 20)).shape == (2, 1, 15, 20)


def test_smallest_size_is_a_multiple_of_the_stride_when_the_architecture_needs_it(installed):
    model = unpadded(build("divisible", encoder_depth=3))
    # 16x16 is the smallest multiple of 8 that runs; padding makes any side from 9 enough
    with pytest.raises(InputShapeError, match=r"8x8 input is too small.*9x9.*9 pads to 16"):
        model(torch.randn(1, 3, 8, 8))
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 1, 16, 16)
    assert model(torch.randn(1, 3, 9, 11)).shape == (1, 1, 9, 11)


def test_smallest_size_is_searched_once_and_only_after_a_failure(installed, monkeypatch):
    calls = []
    search = segcore.model._search_smallest
    monkeypatch.setattr(segcore.model, "_search_smallest",
                        lambda *args: calls.append(args) or search(*args))
    padded = build()
    hooked = []
    padded.encoder.register_forward_hook(lambda *args: hooked.append(args))
    assert padded(torch.randn(1, 3, 1, 3)).shape == (1, 1, 1, 3)  # tiny, but it runs
    assert calls == [] and len(hooked) == 1
    model = unpadded(build(encoder_depth=3))
    model(torch.randn(1, 3, 16, 16))
    assert calls == []
    for _ in range(2):
        with pytest.raises(InputShapeError):
            model(torch.randn(1, 3, 4, 4))
    assert len(calls) == 1


def test_batch_of_one_in_training_mode_is_explained(installed):
    model = build().train()
    with pytest.raises(InputShapeError, match="at least 2 images per batch") as error:
        model(torch.randn(1, 3, 32, 32))
    assert "model.eval()" in str(error.value)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1, 32, 32)


def test_other_failures_are_not_blamed_on_the_input(installed):
    model = build()
    model.decoder.conv[0].weight.data = torch.zeros(8, 5, 1, 1)  # a broken decoder
    with pytest.raises(RuntimeError) as error:
        model(torch.randn(1, 3, 64, 64))
    assert not isinstance(error.value, SegcoreError)


def test_checks_are_skipped_when_compiling_and_exporting(installed):
    model = build()
    x = torch.randn(1, 3, 64, 64).to(memory_format=torch.channels_last)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), model(x))
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


# -- activations -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("activation", "words"),
    [
        (lambda: 5, ["returned 5", "not a torch.nn.Module", "'sigmoid'"]),
        (dict, ["dict returned {}", "'softmax'"]),
        (torch.sigmoid, ["cannot be called with no arguments", "torch.nn.ReLU"]),
        ("Sigmoid", ["unknown activation 'Sigmoid'", "Did you mean 'sigmoid'"]),
        ("relu", ["unknown activation 'relu'", "'tanh'"]),
        (5, ["unknown activation 5", "a callable returning a torch.nn.Module"]),
    ],
)
def test_bad_activation_is_refused_at_build(installed, activation, words):
    for arguments in ({"activation": activation},
                      {"aux_params": {"classes": 2, "activation": activation}}):
        with pytest.raises(InvalidOptionError) as error:
            build(**arguments)
        for word in words:
            assert word in str(error.value), str(error.value)


@pytest.mark.parametrize("activation", [nn.ReLU, lambda: nn.Softmax(dim=1), nn.Tanh(), "clamp"])
def test_good_activations_are_kept(installed, activation):
    model = build(activation=activation)
    assert isinstance(model.segmentation_head[2].activation, nn.Module)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)
