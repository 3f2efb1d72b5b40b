"""Tiled prediction, TTA, band streaming to files and ``segcore predict``."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from segcore_train.errors import DataError
from segcore_train.plots import palette
from segcore_train.predict import (
    open_image,
    parse_tta,
    predict_file,
    predict_tiled,
    predict_to_mask,
)
from torch import nn

import segcore
from segcore import cli
from segcore.errors import InputShapeError, InvalidOptionError

pytest.importorskip("segcore_unet")
pytest.importorskip("segcore_resnet")


def tiny_unet(classes: int = 3, **options) -> nn.Module:
    torch.manual_seed(0)
    return segcore.build("unet", encoder="resnet18", encoder_weights=None, classes=classes,
                         encoder_depth=3, decoder_channels=(32, 16, 8), **options).eval()


class Pointwise(nn.Module):
    """1x1 convolutions only: each output pixel sees its input pixel, so any tiling is exact."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * 3


def whole(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(image[None])[0].softmax(0)


# -- predict_tiled -----------------------------------------------------------------------------
def test_an_image_that_fits_in_a_tile_equals_whole_image_prediction():
    model = tiny_unet()
    image = torch.randn(3, 45, 61)
    result = predict_tiled(model, image, tile=64)
    assert result.shape == (3, 45, 61) and result.dtype == torch.float32
    torch.testing.assert_close(result, whole(model, image), atol=1e-4, rtol=0)
    # the optimized copy gives the same
    fast = predict_tiled(segcore.optimize_for_inference(model), image, tile=64)
    torch.testing.assert_close(fast, result, atol=1e-4, rtol=0)


def test_tiling_is_exact_when_the_receptive_field_is_one_pixel():
    model = Pointwise().eval()
    image = torch.randn(3, 150, 230)
    expected = whole(model, image)
    for tile, overlap in ((32, 0.25), (50, 0.0), (64, 0.5)):
        result = predict_tiled(model, image, tile=tile, overlap=overlap, batch_size=3)
        torch.testing.assert_close(result, expected, atol=1e-5, rtol=0)
    # flips commute with 1x1 convolutions: TTA changes nothing either
    result = predict_tiled(model, image, tile=64, tta="d4", batch_size=8)
    torch.testing.assert_close(result, expected, atol=1e-5, rtol=0)


def test_tiles_of_a_convolutional_model_are_close_to_the_whole_image():
    model = tiny_unet()
    image = torch.randn(3, 96, 160)
    result = predict_tiled(model, image, tile=64, overlap=0.5)
    expected = whole(model, image)
    assert (result.argmax(0) == expected.argmax(0)).float().mean() > 0.9
    assert (result - expected).abs().mean() < 0.05


def test_tta_averages_probabilities_of_the_flipped_and_scaled_predictions():
    model = tiny_unet()
    image = torch.randn(3, 48, 64)
    with torch.no_grad():
        plain = model(image[None]).softmax(1)
        flipped = model(image[None].flip(-1)).flip(-1).softmax(1)
        upside = model(image[None].flip(-2)).flip(-2).softmax(1)
        small = torch.nn.functional.interpolate(image[None], size=[24, 32], mode="bilinear")
        small = torch.nn.functional.interpolate(model(small), size=[48, 64], mode="bilinear")
    result = predict_tiled(model, image, tile=64, tta="hflip,vflip")
    torch.testing.assert_close(result, ((plain + flipped + upside) / 3)[0], atol=1e-4, rtol=0)
    result = predict_tiled(model, image, tile=64, tta=["hflip"], scales=(1.0, 0.5))
    assert not torch.allclose(result, plain[0], atol=1e-3)
    with torch.no_grad():  # the variants: (identity, hflip) x (1.0, 0.5)
        small_flip = torch.nn.functional.interpolate(image[None].flip(-1), size=[24, 32],
                                                     mode="bilinear")
        small_flip = torch.nn.functional.interpolate(model(small_flip), size=[48, 64],
                                                     mode="bilinear").flip(-1)
    expected = (plain + flipped + small.softmax(1) + small_flip.softmax(1)) / 4
    torch.testing.assert_close(result, expected[0], atol=1e-4, rtol=0)


def test_tta_names_and_presets():
    assert parse_tta(None) == ["identity"]
    assert parse_tta("hflip, vflip") == ["identity", "hflip", "vflip"]
    assert len(parse_tta("d4")) == 8 and len(parse_tta("flips")) == 4
    with pytest.raises(InvalidOptionError, match=r"unknown test-time augmentation 'hflp'.*hflip"):
        parse_tta("hflp")


def test_one_class_models_use_a_sigmoid():
    model = tiny_unet(classes=1)
    image = torch.randn(3, 40, 40)
    with torch.no_grad():
        expected = model(image[None])[0].sigmoid()
    torch.testing.assert_close(predict_tiled(model, image, tile=64), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("options", "words"), [
    ({"tile": 0}, "tile must be a positive int"),
    ({"tile": -3}, "tile must be a positive int"),
    ({"overlap": 1.0}, r"overlap must be a fraction of the tile in \[0, 1\)"),
    ({"overlap": -0.1}, r"overlap must be a fraction"),
    ({"batch_size": 0}, "batch_size must be a positive int"),
    ({"scales": (1.0, 0)}, "scales must be positive numbers"),
])
def test_bad_options_are_refused(options, words):
    with pytest.raises(InvalidOptionError, match=words):
        predict_tiled(Pointwise(), torch.zeros(3, 8, 8), **options)


def test_bad_images_are_refused():
    model = tiny_unet()
    with pytest.raises(InputShapeError, match=r"must be \(C, H, W\)"):
        predict_tiled(model, torch.zeros(1, 3, 8, 8))
    with pytest.raises(InputShapeError, match="has 1 channels but the model takes 3"):
        predict_tiled(model, torch.zeros(1, 8, 8))


# -- streaming to files ------------------------------------------------------------------------
def test_band_streaming_equals_the_in_memory_result(tmp_path):
    model = tiny_unet()
    generator = np.random.default_rng(0)
    array = generator.integers(0, 256, (300, 700, 3), dtype=np.uint8)
    tensor = torch.from_numpy(array.transpose(2, 0, 1).copy())
    expected = predict_tiled(model, tensor, tile=128, batch_size=4)
    written = predict_to_mask(model, tensor, tmp_path / "a.png", tile=128, batch_size=4,
                              probabilities="tiff")
    with Image.open(written) as picture:
        assert picture.mode == "P"
        mask = np.asarray(picture)
        colours = picture.getpalette()[:9]
    assert np.array_equal(mask, expected.argmax(0).numpy())
    assert colours == [value for colour in palette(3) for value in colour]
    maps = tifffile.imread(tmp_path / "probabilities" / "a.tif")
    assert maps.shape == (3, 300, 700) and maps.dtype == np.uint16
    assert np.abs(maps / 65535 - expected.numpy()).max() <= 1 / 65535
    # a pointwise model: the streamed mask is the whole-image argmax, every band included
    model = Pointwise().eval()
    written = predict_to_mask(model, tensor.float() / 255, tmp_path / "b.png", tile=64)
    with Image.open(written) as picture:
        mask = np.asarray(picture)
    assert np.array_equal(mask, whole(model, tensor.float() / 255).argmax(0).numpy())


def test_predict_file_reads_files_and_writes_16_bit_probability_pngs(tmp_path):
    model = tiny_unet(classes=2)
    generator = np.random.default_rng(1)
    array = generator.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "scene.tif", array, photometric="rgb")
    Image.fromarray(array).save(tmp_path / "scene.png")
    source = open_image(tmp_path / "scene.tif")
    assert isinstance(source.data, np.memmap)  # an uncompressed TIFF is memory-mapped
    expected = predict_tiled(model, torch.from_numpy(array.transpose(2, 0, 1).copy()), tile=64)
    for name in ("scene.tif", "scene.png"):
        out = tmp_path / name.replace(".", "_")
        written = predict_file(model, tmp_path / name, out / "scene.png", tile=64,
                               probabilities="png16")
        with Image.open(written) as picture:
            assert np.array_equal(np.asarray(picture), expected.argmax(0).numpy())
        for k in range(2):
            with Image.open(out / "probabilities" / "scene" / f"{k}.png") as picture:
                values = np.asarray(picture)
            assert values.dtype == np.uint16
            assert np.abs(values / 65535 - expected[k].numpy()).max() <= 1 / 65535
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: cannot be read"):
        predict_file(model, broken, tmp_path / "out.png")


# -- the command -------------------------------------------------------------------------------
def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_the_predict_command(tmp_path, capsys):
    model = tiny_unet(classes=4)
    model.save_pretrained(tmp_path / "model")
    images = tmp_path / "images"
    images.mkdir()
    generator = np.random.default_rng(2)
    Image.fromarray(generator.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(
        images / "a.png")
    tifffile.imwrite(images / "b.tif", generator.integers(0, 65535, (50, 60, 3), np.uint16),
                     photometric="rgb")
    status, output = run("predict", str(tmp_path / "model"), str(images), str(tmp_path / "out"),
                         "--tile", "64", "--tta", "hflip", "--probabilities", "tiff")
    assert status == 0, output
    assert "normalisation: ImageNet defaults" in output and "a.png ->" in output
    for stem, size in (("a", (100, 80)), ("b", (60, 50))):
        with Image.open(tmp_path / "out" / f"{stem}.png") as picture:
            assert picture.mode == "P" and picture.size == size
            assert np.asarray(picture).max() < 4
        assert tifffile.imread(tmp_path / "out" / "probabilities" / f"{stem}.tif").shape == (
            4, size[1], size[0])

    status, _ = run("predict", str(tmp_path / "missing"), str(images), str(tmp_path / "o"))
    assert status == 2 and "has no config.json" in capsys.readouterr().err
    status, _ = run("predict", str(tmp_path / "model"), str(images), str(tmp_path / "o"),
                    "--tile", "0")
    assert status == 2 and "tile must be a positive int" in capsys.readouterr().err
    status, _ = run("predict", str(tmp_path / "model"), str(images), str(tmp_path / "o"),
                    "--overlap", "1")
    assert status == 2 and "overlap must be a fraction" in capsys.readouterr().err
    (images / "c.jpg").write_bytes(b"\xff\xd8 broken")
    status, _ = run("predict", str(tmp_path / "model"), str(images / "c.jpg"),
                    str(tmp_path / "o"))
    assert status == 2 and "c.jpg: cannot be read" in capsys.readouterr().err
    status, _ = run("predict", str(tmp_path / "model"), str(tmp_path / "nowhere"),
                    str(tmp_path / "o"))
    assert status == 2 and "nowhere: does not exist" in capsys.readouterr().err
