"""Bad data: every problem is found up front, named with its file and fix, and all are listed."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from segcore_train import (
    DataError,
    DataValidationError,
    SegmentationFolder,
    read_image,
    read_mask,
    scan,
)
from segcore_train.data import resolve_class_count

from segcore.errors import InvalidOptionError, SegcoreError


def problems_of(root, **options):
    with pytest.raises(DataValidationError) as info:
        scan(root, **{"classes": 3, **options})
    return info.value


def only_problem(root, kind, **options):
    error = problems_of(root, **options)
    assert [p.kind for p in error.problems] == [kind], str(error)
    return error.problems[0], str(error)


def assert_only_problem_at(root, kind, path, *texts, **options):
    """Scanning ``root`` finds one ``kind`` problem at ``path``, its message holding ``texts``."""
    problem, message = only_problem(root, kind, **options)
    assert problem.path == path, message
    for text in texts:
        assert text in message, message


def test_errors_are_segcore_value_errors(writer):
    error = problems_of(writer.root)
    assert isinstance(error, DataError) and isinstance(error, SegcoreError)
    assert isinstance(error, ValueError)


def test_missing_dataset_folder(tmp_path):
    _, message = only_problem(tmp_path / "nowhere", "missing-folder")
    assert "does not exist" in message and "segcore data synth" in message


def test_missing_masks_folder(tmp_path):
    (tmp_path / "images").mkdir()
    assert_only_problem_at(tmp_path, "missing-folder", tmp_path / "masks", "no 'masks' folder")


def test_empty_images_folder(writer):
    assert_only_problem_at(writer.root, "empty", writer.images, "holds no image")


@pytest.mark.parametrize(
    ("folder", "stem", "kind", "expected"),
    [
        ("images", "b", "missing-mask", ("images/b.png: has no mask", "add masks/b.png")),
        ("masks", "b_mask", "orphan-mask", ("has no image", "rename it to match its image")),
    ],
    ids=["image-without-mask", "mask-without-image"],
)
def test_file_without_its_pair(writer, folder, stem, kind, expected):
    writer.pair("a")
    write = writer.image if folder == "images" else writer.mask
    write(stem)
    assert_only_problem_at(writer.root, kind, writer.root / folder / f"{stem}.png", *expected)


def test_mask_values_at_or_above_classes_are_listed(writer):
    mask = writer.classes(classes=3)
    mask[0, :4] = (3, 7, 7, 12)
    writer.image("a")
    writer.mask("a", mask)
    assert_only_problem_at(
        writer.root, "class-values", writer.masks / "a.png",
        "values 3, 7, 12 outside the classes 0..2 (classes=3)", "classes=13 (--classes 13)",
    )


def test_value_255_suggests_ignore_index(writer):
    mask = writer.classes(classes=3)
    mask[0, 0] = 255
    writer.image("a")
    writer.mask("a", mask)
    _, message = only_problem(writer.root, "class-values")
    assert "ignore_index=255 (--ignore-index 255)" in message
    assert scan(writer.root, classes=3, ignore_index=255).ignored_pixels == 1


def test_binary_mask_with_more_than_two_classes_is_out_of_range(writer):
    writer.image("a")
    writer.mask("a", (writer.classes(classes=2) * 255).astype(np.uint8))
    _, message = only_problem(writer.root, "class-values")
    assert "values 255 outside the classes 0..2" in message


def test_mismatched_sizes(writer):
    writer.image("a", writer.rgb(24, 32))
    writer.mask("a", writer.classes(32, 24))
    assert_only_problem_at(
        writer.root, "size-mismatch", writer.masks / "a.png",
        "is 32x24 (HxW) but its image a.png is 24x32", "nearest-neighbour",
    )


@pytest.mark.parametrize("content", [b"", b"not a picture at all", "truncated"])
def test_unreadable_image(writer, content):
    if content == "truncated":
        writer.image("a")
        content = (writer.images / "a.png").read_bytes()[:60]
    (writer.images / "a.png").write_bytes(content)
    writer.mask("a")
    assert_only_problem_at(
        writer.root, "unreadable", writer.images / "a.png",
        "images/a.png: cannot be read", "re-export the file",
    )


def test_unreadable_mask_and_tiff(writer):
    writer.image("a")
    (writer.masks / "a.tif").write_bytes(b"II*\x00garbage")
    assert_only_problem_at(writer.root, "unreadable", writer.masks / "a.tif", "cannot be read")


def test_jpeg_mask_is_refused(writer):
    writer.image("a")
    writer.mask("a", writer.classes(), suffix=".jpg")
    _, message = only_problem(writer.root, "lossy-mask")
    assert "is a JPEG" in message and "save masks as PNG" in message


def test_colour_mask_is_refused(writer):
    writer.image("a")
    writer.mask("a", writer.rgb())
    _, message = only_problem(writer.root, "mask-channels")
    assert "has 3 channels" in message and "palette PNG of class indices 0..2" in message


def test_unsupported_file_and_duplicate_stem(writer):
    writer.pair("a")
    writer.image("a", suffix=".jpg")
    (writer.images / "notes.txt").write_text("hello")
    (writer.images / ".DS_Store").write_bytes(b"ignored: hidden")
    error = problems_of(writer.root)
    kinds = sorted(p.kind for p in error.problems)
    assert kinds == ["duplicate-stem", "unsupported-file"]
    assert "images/notes.txt: is not a supported file (an image is .png, .jpg" in str(error)
    assert "2 images share the name 'a' (a.jpg, a.png)" in str(error)


def test_mixed_channel_counts(writer):
    writer.pair("a")
    writer.pair("b")
    writer.image("c", writer.rng.integers(0, 256, (24, 32), dtype=np.uint8))
    writer.mask("c")
    assert_only_problem_at(
        writer.root, "channels", writer.images / "c.png",
        "has 1 channel(s), most images have 3", "--channels 3",
    )


def test_classes_file_must_agree(writer):
    writer.pair("a")
    (writer.root / "classes.txt").write_text("background\nroad\n")
    _, message = only_problem(writer.root, "classes-file")
    assert "names 2 classes but classes=3" in message


def test_multilabel_missing_and_extra_label_files(writer):
    writer.image("a")
    writer.label_pngs("a", np.zeros((2, 24, 32), dtype=np.uint8))
    writer.image("b")
    writer.label_pngs("b", np.zeros((4, 24, 32), dtype=np.uint8))
    error = problems_of(writer.root, multilabel=True)
    assert sorted(p.kind for p in error.problems) == ["missing-mask", "unsupported-file"]
    assert "masks/a: lacks the label mask(s) 2.png" in str(error)
    assert "masks/b/3.png: is not a label mask" in str(error)


def test_multilabel_values_must_be_binary(writer):
    writer.image("a")
    planes = np.zeros((3, 24, 32), dtype=np.uint8)
    planes[1, 0, :3] = (1, 2, 200)
    writer.label_pngs("a", planes)
    assert_only_problem_at(
        writer.root, "label-values", writer.masks / "a" / "1.png",
        "has values 0, 1, 2, 200", "threshold", multilabel=True,
    )


def test_multilabel_tiff_with_wrong_label_count(writer):
    writer.image("a")
    writer.label_tiff("a", np.zeros((24, 32, 2), dtype=np.uint8))
    _, message = only_problem(writer.root, "mask-channels", multilabel=True)
    assert "has 2 channel(s), but there are 3 labels" in message


def test_every_problem_is_collected_in_one_error(writer):
    writer.pair("good")
    writer.image("no_mask")
    writer.mask("no_image")
    writer.image("small", writer.rgb(8, 8))
    writer.mask("small")
    bad = writer.classes()
    bad[0, 0] = 9
    writer.image("values")
    writer.mask("values", bad)
    error = problems_of(writer.root)
    assert sorted(p.kind for p in error.problems) == [
        "class-values", "missing-mask", "orphan-mask", "size-mismatch"]
    assert str(error).startswith(f"the dataset in {writer.root} has 4 problems")
    assert f"run `segcore data check {writer.root}` again" in str(error)


def test_the_message_lists_up_to_max_errors(writer):
    for index in range(7):
        writer.image(f"a{index}")
    error = problems_of(writer.root, max_errors=3)
    assert len(error.problems) == 7
    assert str(error).count("has no mask") == 3
    assert "... and 4 more (raise max_errors to list them)" in str(error)


def test_readers_raise_data_error_naming_the_file(writer):
    (writer.images / "a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"a\.png: cannot be read"):
        read_image(writer.images / "a.png")
    with pytest.raises(DataError, match=r"does not exist"):
        read_image(writer.images / "missing.png")
    mask = writer.mask("m", np.full((4, 4), 5, dtype=np.uint8))
    with pytest.raises(DataError, match=r"m\.png: has values 5 outside the classes 0\.\.2"):
        read_mask(mask, classes=3)


def test_a_file_broken_after_the_scan_fails_with_its_name(writer):
    writer.pair("a")
    dataset = scan(writer.root, classes=3).dataset()
    Image.fromarray(np.full((24, 32), 4, dtype=np.uint8)).save(writer.masks / "a.png")
    with pytest.raises(DataError, match=r"masks/a\.png: has values 4"):
        dataset[0]


@pytest.mark.parametrize(("options", "words"), [
    ({"classes": 1}, "at least 2 (background and one class"),
    ({"classes": 0, "multilabel": True}, "at least 1 for multi-label"),
    ({"classes": 3, "ignore_index": 1}, "ignore_index=1 is one of the classes"),
    ({"classes": 3, "multilabel": True, "ignore_index": 255}, "ignore_index is for multi-class"),
    ({"classes": 3, "channels": 0}, "channels must be a positive int"),
])
def test_bad_options(writer, options, words):
    with pytest.raises(InvalidOptionError, match=re.escape(words)):
        scan(writer.root, **options)


def test_dataset_checks_its_options():
    with pytest.raises(InvalidOptionError, match="classes must be an int"):
        SegmentationFolder([], classes=2.0)


def test_class_count_is_given_or_read_from_the_classes_file(writer):
    how_to_set = "set data.classes (the number of classes, background included)"
    assert resolve_class_count(writer.root, 5, how_to_set) == 5
    with pytest.raises(InvalidOptionError) as info:
        resolve_class_count(writer.root, None, how_to_set)
    assert str(info.value) == f"{how_to_set}: {writer.root / 'classes.txt'} does not exist"
    (writer.root / "classes.txt").write_text("background\nroad\n\nsky\n")
    assert resolve_class_count(writer.root, None, how_to_set) == 3
