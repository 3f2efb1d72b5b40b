"""Reading each supported image and mask format, through the readers and the Dataset."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from segcore_train import (
    SegmentationFolder,
    image_to_tensor,
    read_image,
    read_mask,
    scan,
)


def test_rgb_png_and_class_index_mask_give_float_image_and_long_mask(writer):
    image = writer.rgb(20, 28)
    mask = writer.classes(20, 28, classes=3)
    writer.image("a", image)
    writer.mask("a", mask)
    report = scan(writer.root, classes=3)
    dataset = report.dataset()
    assert isinstance(dataset, SegmentationFolder) and len(dataset) == 1
    x, y = dataset[0]
    assert x.shape == (3, 20, 28) and x.dtype == torch.float32
    assert torch.allclose(x, torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    assert y.shape == (20, 28) and y.dtype == torch.int64
    assert torch.equal(y, torch.from_numpy(mask).long())


def test_jpeg_image_is_read_as_rgb(writer):
    smooth = np.zeros((24, 32, 3), dtype=np.uint8)
    smooth[:, :16] = (200, 40, 90)
    path = writer.image("a", smooth, suffix=".jpg", quality=95)
    writer.mask("a")
    array = read_image(path)
    assert array.shape == (24, 32, 3) and array.dtype == np.uint8
    assert np.abs(array[4:20, 2:12].astype(int) - (200, 40, 90)).max() < 12  # lossy
    assert scan(writer.root, classes=3).formats == {".jpg": 1}


def test_16_bit_tiff_is_scaled_by_65535(writer):
    image = writer.rng.integers(0, 65536, (24, 32), dtype=np.uint16)
    path = writer.image("a", image, suffix=".tif")
    writer.mask("a")
    array = read_image(path)
    assert array.dtype == np.uint16 and array.shape == (24, 32, 1)
    assert np.array_equal(array[:, :, 0], image)
    x, _ = scan(writer.root, classes=3).dataset()[0]
    assert x.shape == (1, 24, 32)
    assert torch.allclose(x[0], torch.from_numpy(image.astype(np.float32) / 65535))


def test_16_bit_grayscale_png(writer):
    image = writer.rng.integers(0, 65536, (24, 32), dtype=np.uint16)
    path = writer.image("a", image)
    assert Image.open(path).mode.startswith("I")
    array = read_image(path)
    assert array.dtype == np.uint16 and np.array_equal(array[:, :, 0], image)


@pytest.mark.parametrize("layout", ["contig", "planar", "pages"])
def test_four_channel_tiff_in_each_layout(writer, layout):
    image = writer.rng.integers(0, 65536, (24, 32, 4), dtype=np.uint16)
    path = writer.images / "a.tif"
    if layout == "contig":
        tifffile.imwrite(path, image)  # RGB + extra sample
    elif layout == "planar":
        tifffile.imwrite(path, np.moveaxis(image, -1, 0), photometric="minisblack",
                         planarconfig="separate")
    else:  # one page per channel
        tifffile.imwrite(path, np.moveaxis(image, -1, 0), photometric="minisblack")
    writer.mask("a")
    assert np.array_equal(read_image(path), image)
    report = scan(writer.root, classes=3)
    assert report.channels == 4
    x, _ = report.dataset()[0]
    assert x.shape == (4, 24, 32)


def test_multi_channel_tiff_of_floats_is_kept(writer):
    image = writer.rng.random((24, 32, 5)).astype(np.float32)
    path = writer.images / "a.tiff"
    tifffile.imwrite(path, image, photometric="minisblack", planarconfig="contig")
    assert np.array_equal(read_image(path), image)
    assert torch.equal(image_to_tensor(image), torch.from_numpy(image).permute(2, 0, 1))


def test_palette_mask_gives_its_indices_not_its_colours(writer):
    mask = writer.classes(classes=5)
    palette = [value for k in range(256) for value in (255 - k, k, (37 * k) % 256)]
    path = writer.mask("a", mask, palette=palette)
    assert Image.open(path).mode == "P"
    writer.image("a")
    assert np.array_equal(read_mask(path, classes=5), mask.astype(np.int64))
    _, y = scan(writer.root, classes=5).dataset()[0]
    assert torch.equal(y, torch.from_numpy(mask).long())


def test_palette_image_is_converted_to_its_colours(writer):
    indices = writer.classes(classes=4)
    picture = Image.fromarray(indices)
    picture.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120] + [0] * 756)
    picture.save(writer.images / "a.png")
    array = read_image(writer.images / "a.png")
    assert array.shape == (24, 32, 3)
    assert tuple(array[indices == 2][0]) == (70, 80, 90)


def test_binary_0_255_mask_reads_as_0_1_for_two_classes(writer):
    binary = (writer.rng.random((24, 32)) > 0.5).astype(np.uint8) * 255
    path = writer.mask("a", binary)
    writer.image("a")
    assert np.array_equal(read_mask(path, classes=2), (binary == 255).astype(np.int64))
    report = scan(writer.root, classes=2)
    assert report.class_pixels == [int((binary == 0).sum()), int((binary == 255).sum())]


def test_one_bit_mask_reads_as_0_1(writer):
    binary = writer.rng.random((24, 32)) > 0.5
    path = writer.masks / "a.png"
    Image.fromarray(binary).save(path)
    assert Image.open(path).mode == "1"
    assert np.array_equal(read_mask(path, classes=2), binary.astype(np.int64))


def test_ignore_index_is_allowed_and_counted(writer):
    mask = writer.classes(classes=3)
    mask[:2] = 255
    writer.mask("a", mask)
    writer.image("a")
    report = scan(writer.root, classes=3, ignore_index=255)
    assert report.ignored_pixels == 2 * 32
    assert sum(report.class_pixels) == 22 * 32
    _, y = report.dataset()[0]
    assert set(torch.unique(y).tolist()) <= {0, 1, 2, 255}


def test_multilabel_one_png_per_label(writer):
    planes = (writer.rng.random((3, 24, 32)) > 0.5).astype(np.uint8)
    planes[1] *= 255  # 0/255 and 0/1 both read as 0/1
    writer.image("a")
    writer.label_pngs("a", planes)
    report = scan(writer.root, classes=3, multilabel=True)
    _, y = report.dataset()[0]
    assert y.shape == (3, 24, 32) and y.dtype == torch.float32
    assert torch.equal(y, torch.from_numpy(planes > 0).float())
    assert report.class_pixels == [int(p.sum()) for p in planes > 0]


def test_multilabel_multi_channel_tiff(writer):
    planes = (writer.rng.random((24, 32, 4)) > 0.5).astype(np.uint8)
    writer.image("a")
    writer.label_tiff("a", planes)
    _, y = scan(writer.root, classes=4, multilabel=True).dataset()[0]
    assert torch.equal(y, torch.from_numpy(planes).permute(2, 0, 1).float())


def test_channels_option_converts_grayscale_and_rgba(writer):
    writer.image("gray", writer.rng.integers(0, 256, (24, 32), dtype=np.uint8))
    writer.image("rgba", writer.rng.integers(0, 256, (24, 32, 4), dtype=np.uint8))
    writer.image("rgb")
    for stem in ("gray", "rgba", "rgb"):
        writer.mask(stem)
    report = scan(writer.root, classes=3, channels=3)
    assert report.channels == 3
    dataset = report.dataset()
    assert all(dataset[i][0].shape == (3, 24, 32) for i in range(3))
    gray = read_image(writer.images / "gray.png", channels=3)
    assert np.array_equal(gray[:, :, 0], gray[:, :, 2])
    luma = read_image(writer.images / "rgb.png", channels=1)
    assert luma.shape == (24, 32, 1) and luma.dtype == np.uint8


def test_report_statistics_match_the_pixels(writer):
    images = [writer.rgb(), writer.rgb(16, 16)]
    writer.image("a", images[0])
    writer.image("b", images[1])
    writer.mask("a")
    writer.mask("b", writer.classes(16, 16))
    report = scan(writer.root, classes=3, workers=2)
    pixels = np.concatenate([i.reshape(-1, 3) for i in images]).astype(np.float64) / 255
    assert np.allclose(report.mean, pixels.mean(axis=0))
    assert np.allclose(report.std, pixels.std(axis=0))
    assert report.sizes == {(24, 32): 1, (16, 16): 1}
    assert "2 samples" in report.summary() and "16..24 x 16..32" in report.summary()
