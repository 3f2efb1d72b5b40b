"""``preprocess_input`` and ``get_preprocessing_fn``: scaling from the dtype, a channel axis."""

from __future__ import annotations

import warnings

import attrs
import numpy
import pytest
import torch

import segcore
from segcore import testing
from segcore.errors import InputTypeError, InvalidOptionError
from segcore.preprocessing import preprocess_input
from segcore.specs import Preprocessing, WeightSource

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IMAGENET = {"input_space": "RGB", "input_range": [0.0, 1.0], "mean": MEAN, "std": STD}


def expected(values01, axis=-1, ndim=3):
    shape = [1] * ndim
    shape[axis] = 3
    return (values01 - numpy.reshape(MEAN, shape)) / numpy.reshape(STD, shape)


def test_a_dark_uint8_image_is_scaled_by_255():
    dark = numpy.ones((4, 5, 3), numpy.uint8)  # max is 1: SMP took it as already in [0, 1]
    result = preprocess_input(dark, **IMAGENET)
    assert result.dtype == numpy.float32 and result.shape == (4, 5, 3)
    numpy.testing.assert_allclose(result, expected(numpy.full((4, 5, 3), 1 / 255)), rtol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "maximum"),
    [(numpy.uint8, 255), (numpy.uint16, 65535), (numpy.int16, 32767), (numpy.int32, 2**31 - 1)],
)
def test_integer_images_are_scaled_by_their_dtype_range(dtype, maximum):
    image = numpy.full((2, 2, 3), maximum, dtype)
    numpy.testing.assert_allclose(preprocess_input(image, **IMAGENET),
                                  expected(numpy.ones((2, 2, 3))), rtol=1e-5)
    tensor = torch.from_numpy(image.astype(numpy.int32) if dtype == numpy.uint16 else image)
    if dtype != numpy.uint16:  # torch has no uint16 arithmetic on every version
        result = preprocess_input(tensor, **IMAGENET)
        assert result.dtype == torch.float32
        numpy.testing.assert_allclose(result.numpy(), expected(numpy.ones((2, 2, 3))), rtol=1e-5)


def test_integer_images_are_mapped_to_the_weights_input_range():
    image = numpy.array([[[0, 51, 255]]], numpy.uint8)
    result = preprocess_input(image, input_range=[0, 255])
    numpy.testing.assert_allclose(result, [[[0.0, 51.0, 255.0]]], rtol=1e-6)


def test_float_images_are_taken_as_already_in_range_and_keep_their_dtype():
    image = numpy.full((2, 2, 3), 0.5, numpy.float32)
    result = preprocess_input(image, **IMAGENET)
    assert result.dtype == numpy.float32
    numpy.testing.assert_allclose(result, expected(image), rtol=1e-6)
    half = torch.full((2, 2, 3), 0.5, dtype=torch.float16)
    assert preprocess_input(half, **IMAGENET).dtype == torch.float16


def test_float_images_far_above_the_range_warn():
    with pytest.warns(UserWarning, match="values reach 255"):
        result = preprocess_input(numpy.full((2, 2, 3), 255.0), **IMAGENET)
    numpy.testing.assert_allclose(result, expected(numpy.full((2, 2, 3), 255.0)))


@pytest.mark.parametrize(
    ("shape", "axis"), [((3, 4, 5), 0), ((2, 3, 4, 5), 1), ((2, 4, 5, 3), -1), ((3, 6, 3), 0)]
)
def test_channel_axis_is_explicit(shape, axis):
    image = numpy.random.default_rng(0).integers(0, 256, shape, dtype=numpy.uint8)
    for x in (image, torch.from_numpy(image)):
        result = preprocess_input(x, channel_axis=axis, **IMAGENET)
        values = result.numpy() if isinstance(result, torch.Tensor) else result
        numpy.testing.assert_allclose(values, expected(image / 255, axis, len(shape)),
                                      rtol=1e-5, atol=1e-6)


def test_a_shape_that_reads_both_ways_warns_unless_the_axis_is_given():
    chw = numpy.zeros((3, 10, 3), numpy.float32)  # a CHW image of width 3
    with pytest.warns(UserWarning, match="channel_axis=0 for a channels-first"):
        preprocess_input(chw, **IMAGENET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess_input(chw, channel_axis=-1, **IMAGENET)
        preprocess_input(chw, channel_axis=0, **IMAGENET)


def test_bgr_reverses_the_channel_axis():
    image = numpy.zeros((3, 2, 2), numpy.float32)
    image[0] = 0.2
    result = preprocess_input(image, input_space="BGR", channel_axis=0)
    numpy.testing.assert_allclose(result[2], numpy.full((2, 2), 0.2))
    numpy.testing.assert_allclose(result[0], numpy.zeros((2, 2)))
    tensor = preprocess_input(torch.from_numpy(image), input_space="BGR", channel_axis=0)
    torch.testing.assert_close(tensor, torch.from_numpy(result))


def test_tensors_stay_on_their_device_and_batches_work():
    batch = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    result = preprocess_input(batch, channel_axis=1, **IMAGENET)
    assert isinstance(result, torch.Tensor) and result.device == batch.device
    assert result.shape == batch.shape and result.dtype == torch.float32


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([[1, 2, 3]], ["got list", "numpy.asarray(x)"]),
        ("image.png", ["got a str", "Load the image first"]),
        (None, ["got None"]),
        (numpy.zeros((2, 2, 3), bool), ["dtype bool"]),
        (torch.zeros(2, 2, 3, dtype=torch.complex64), ["dtype complex64"]),
        (numpy.array([["a", "b", "c"]]), ["dtype <U1"]),
    ],
)
def test_what_is_not_an_image_raises_input_type_error(value, words):
    with pytest.raises(InputTypeError) as error:
        preprocess_input(value, **IMAGENET)
    for word in words:
        assert word in str(error.value), str(error.value)


@pytest.mark.parametrize(
    ("shape", "arguments", "words"),
    [
        ((3, 8, 8), {}, ["last axis (the default)", "has 8 entries", "channel_axis=0"]),
        ((2, 3, 8, 8), {}, ["channel_axis=1"]),
        ((8, 8, 4), {}, ["image[..., :3]"]),
        ((8, 8), {}, ["(H, W) image has no channel axis"]),
        ((8, 8, 3), {"channel_axis": 3}, ["channel_axis=3 does not exist", "3 axes"]),
        ((8, 8, 3), {"channel_axis": "last"}, ["channel_axis must be an int"]),
        ((8, 8, 3), {"channel_axis": 0}, ["axis 0", "has 8 entries", "channel_axis=2"]),
        ((8, 8, 3), {"axis": 0}, ["'axis'", "channel_axis="]),
        ((8, 8, 3), {"input_space": "rgb"}, ["'RGB' or 'BGR'"]),
        ((8, 8, 3), {"input_range": [1, 0]}, ["low < high"]),
        ((8, 8, 3), {"mean": [0.5, 0.5]}, ["mean and std", "2 and 3"]),
        ((8, 8, 3), {"std": [0.2, 0.0, 0.2]}, ["std must not contain 0"]),
        ((8, 8, 3), {"mean": "imagenet"}, ["mean must be a sequence of numbers"]),
    ],
)
def test_bad_options_raise_invalid_option_error_with_the_fix(shape, arguments, words):
    with pytest.raises(InvalidOptionError) as error:
        preprocess_input(numpy.zeros(shape, numpy.uint8), **{**IMAGENET, **arguments})
    for word in words:
        assert word in str(error.value), str(error.value)


def test_settings_dicts_with_other_keys_are_accepted():
    settings = {**IMAGENET, "url": "https://example.org/w.pth", "input_size": [3, 224, 224],
                "num_classes": 1000}
    preprocess_input(numpy.zeros((2, 2, 3), numpy.uint8), **settings)


def test_get_preprocessing_fn_binds_the_weights_parameters():
    source = WeightSource(url="https://example.org/tiny.safetensors",
                          preprocessing=Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25,) * 3))
    spec = attrs.evolve(testing.TINY_ENCODER_SPEC, name="tiny-pretrained",
                        weights={"imagenet": source})
    with testing.specs_installed(encoders=[spec]):
        preprocess = segcore.get_preprocessing_fn("tiny-pretrained", pretrained="imagenet")
    image = numpy.full((3, 4, 4), 255, numpy.uint8)
    numpy.testing.assert_allclose(preprocess(image, channel_axis=0), numpy.full((3, 4, 4), 2.0))
    with pytest.raises(InvalidOptionError, match="channel_axis=0"):
        preprocess(image)
