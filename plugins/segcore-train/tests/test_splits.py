"""Splits: a fraction with a seed (deterministic), a splits.json, or a folder of <split>.txt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from segcore_train import DataError, DataValidationError, Sample, read_splits, scan, split_samples

from segcore.errors import InvalidOptionError


def samples(count: int) -> list[Sample]:
    return [Sample(f"s{index:03d}", Path(f"s{index:03d}.png"), (Path("m.png"),))
            for index in range(count)]


def stems(items) -> list[str]:
    return [item.stem for item in items]


def test_fraction_split_is_deterministic_and_complete():
    first = split_samples(samples(50), fraction=0.2, seed=3)
    again = split_samples(samples(50), fraction=0.2, seed=3)
    assert stems(first["val"]) == stems(again["val"]) and len(first["val"]) == 10
    assert sorted(stems(first["train"]) + stems(first["val"])) == stems(samples(50))
    assert stems(first["train"]) == sorted(stems(first["train"]))  # order is kept


def test_the_seed_changes_the_split():
    assert (stems(split_samples(samples(50), 0.2, seed=0)["val"])
            != stems(split_samples(samples(50), 0.2, seed=1)["val"]))


def test_adding_samples_keeps_most_assignments():
    before = set(stems(split_samples(samples(100), 0.2, seed=0)["val"]))
    after = set(stems(split_samples(samples(110), 0.2, seed=0)["val"]))
    assert len(before & after) >= 15


def test_small_and_zero_fractions():
    assert len(split_samples(samples(3), 0.1)["val"]) == 1  # at least one
    assert split_samples(samples(3), 0.0)["val"] == []
    assert len(split_samples(samples(1), 0.2)["train"]) == 1
    with pytest.raises(InvalidOptionError, match=r"in \[0, 1\)"):
        split_samples(samples(3), 1.0)


def test_scan_uses_the_fraction_without_a_splits_file(writer):
    for index in range(10):
        writer.pair(f"a{index}")
    report = scan(writer.root, classes=3, val_fraction=0.3, seed=5)
    assert len(report.splits["val"]) == 3 and len(report.splits["train"]) == 7
    assert report.splits_source == "fraction 0.3 to 'val', seed 5"
    assert len(report.dataset("val")) == 3
    assert stems(report.splits["val"]) == stems(split_samples(report.samples, 0.3, 5)["val"])


def test_scan_reads_splits_json_by_default(writer):
    for stem in "abcd":
        writer.pair(stem)
    (writer.root / "splits.json").write_text(json.dumps(
        {"train": ["a", "b.png"], "val": ["c"], "test": ["d"]}))
    report = scan(writer.root, classes=3)
    assert {name: stems(items) for name, items in report.splits.items()} == {
        "train": ["a", "b"], "val": ["c"], "test": ["d"]}
    assert report.splits_source == "splits.json"
    assert len(report.dataset("test")) == 1
    with pytest.raises(InvalidOptionError, match="no split 'holdout'"):
        report.dataset("holdout")


def test_a_folder_of_txt_files(writer, tmp_path):
    for stem in "abc":
        writer.pair(stem)
    folder = tmp_path / "sets"
    folder.mkdir()
    (folder / "train.txt").write_text("a\n# a comment\nb  # trailing\n\n")
    (folder / "val.txt").write_text("c\n")
    assert read_splits(folder) == {"train": ["a", "b"], "val": ["c"]}
    report = scan(writer.root, classes=3, splits=folder)
    assert stems(report.splits["train"]) == ["a", "b"]


def test_splits_file_problems_are_reported(writer):
    writer.pair("a")
    writer.pair("b")
    (writer.root / "splits.json").write_text(json.dumps(
        {"train": ["a", "ghost"], "test": ["a"]}))
    with pytest.raises(DataValidationError) as info:
        scan(writer.root, classes=3)
    error, message = info.value, str(info.value)
    assert [p.kind for p in error.problems] == ["splits"] * 3
    assert "splits.json: has no 'val' split" in message
    assert "puts 'a' in both 'train' and 'test'" in message
    assert "names images that are not in images/: 'ghost'" in message


def test_an_image_with_its_own_problem_is_not_reported_again_by_the_splits(writer):
    writer.pair("a")
    writer.image("b")  # no mask
    (writer.root / "splits.json").write_text(json.dumps({"train": ["a"], "val": ["b"]}))
    with pytest.raises(DataValidationError) as info:
        scan(writer.root, classes=3)
    assert [p.kind for p in info.value.problems] == ["missing-mask"]


@pytest.mark.parametrize(("content", "words"), [
    ("{not json", "is not valid JSON"),
    ('["a", "b"]', "must map each split name to a list of image stems"),
])
def test_unreadable_splits_file(tmp_path, content, words):
    path = tmp_path / "splits.json"
    path.write_text(content)
    with pytest.raises(DataError, match=words):
        read_splits(path)
    with pytest.raises(DataError, match="cannot be read"):
        read_splits(tmp_path / "missing.json")
    with pytest.raises(DataError, match=r"holds no <split>\.txt file"):
        read_splits(tmp_path)
