"""The README's first command runs examples/main_job.py: it must keep working end to end.

A tiny version (16 images of 48 px, one epoch) in a child process: data, training, evaluation
and tiled prediction, and the files it points the user to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("segcore_unet")
pytest.importorskip("segcore_resnet")

SCRIPT = Path(__file__).parents[3] / "examples" / "main_job.py"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="runs from the repository checkout")
def test_main_job_runs_end_to_end(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "work"), "--count", "16", "--size", "48",
         "--epochs", "1", "--batch-size", "4", "--threads", "1"],
        capture_output=True, text=True, timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert process.returncode == 0, process.stdout + process.stderr
    output = process.stdout
    assert re.search(r"3\. validation mIoU \d\.\d{3}", output), output
    runs = list((tmp_path / "work" / "runs").iterdir())
    assert len(runs) == 1
    for name in ("curves.png", "predictions.png", "confusion.png", "metrics.csv",
                 "config.toml", "best/config.json"):
        assert (runs[0] / name).is_file(), name
        assert str(runs[0]) in output
    with Image.open(tmp_path / "work" / "large.png") as image, \
            Image.open(tmp_path / "work" / "large_mask.png") as mask:
        assert mask.size == image.size and min(image.size) > 256  # several tiles
        assert mask.mode == "P"
