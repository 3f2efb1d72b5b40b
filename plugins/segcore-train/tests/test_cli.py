"""``segcore data synth`` and ``segcore data check`` through ``segcore.cli.main``."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from segcore import cli
from segcore.plugins import STATUS_LOADED, get_plugin_manager
from segcore.registry import get_registry


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_the_plugin_provides_the_data_command():
    assert "data" in get_registry().names("commands")
    records = [r for r in get_plugin_manager().records.values()
               if r.distribution == "segcore-train"]
    assert [r.status for r in records] == [STATUS_LOADED]
    status, output = run()
    assert status == 0 and "data" in output and "training data" in output


def test_synth_then_check(tmp_path):
    root = tmp_path / "synth"
    status, output = run("data", "synth", str(root), "--count", "6", "--size", "40",
                         "--seed", "3", "--classes", "5")
    assert status == 0
    assert f"wrote 6 images and masks to {root}" in output
    assert "background, disk, rectangle, triangle, ring; seed 3" in output
    assert len(list((root / "images").iterdir())) == 6

    status, output = run("data", "check", str(root))  # classes from classes.txt
    assert status == 0, output
    assert "6 samples (.png 6), multi-class, 5 classes" in output
    assert "image sizes (HxW): 30..40" in output
    assert "splits (splits.json): train 5, val 1" in output
    assert "  4 ring" in output and "mean per channel" in output
    assert output.rstrip().endswith("no problem found")


def test_synth_min_size_makes_images_of_one_size(tmp_path):
    root = tmp_path / "synth"
    assert run("data", "synth", str(root), "--count", "3", "--size", "32",
               "--min-size", "32")[0] == 0
    status, output = run("data", "check", str(root))
    assert status == 0 and "image sizes (HxW): 32..32 x 32..32 (1 distinct)" in output, output


def test_synth_refuses_a_used_directory_and_overwrites_when_asked(tmp_path, capsys):
    root = tmp_path / "synth"
    assert run("data", "synth", str(root), "--count", "2", "--size", "32")[0] == 0
    status, _ = run("data", "synth", str(root), "--count", "2", "--size", "32")
    assert status == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert run("data", "synth", str(root), "--count", "3", "--size", "32", "--overwrite")[0] == 0


def test_check_lists_the_problems_and_exits_1(writer):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(writer.images / "a.png")
    Image.fromarray(np.full((8, 8), 6, np.uint8)).save(writer.masks / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(writer.images / "b.png")
    status, output = run("data", "check", str(writer.root), "--classes", "3")
    assert status == 1
    assert "has 2 problems (class-values, missing-mask)" in output
    assert "masks/a.png: has values 6 outside the classes 0..2" in output
    assert "images/b.png: has no mask" in output


def test_check_options_reach_the_scan(writer):
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = 255
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(writer.images / "a.png")
    Image.fromarray(mask).save(writer.masks / "a.png")
    assert run("data", "check", str(writer.root), "--classes", "3")[0] == 1
    status, output = run("data", "check", str(writer.root), "--classes", "3",
                         "--ignore-index", "255", "--channels", "3", "--val-fraction", "0")
    assert status == 0, output
    assert "3 channel(s)" in output and "ignored (255)" in output


def test_check_needs_the_number_of_classes(writer, capsys):
    status, _ = run("data", "check", str(writer.root))
    assert status == 2
    assert "pass --classes" in capsys.readouterr().err


def test_data_without_an_action_is_a_usage_error(capsys):
    assert run("data")[0] == 2
    assert "ACTION" in capsys.readouterr().err

