"""A third-party encoder package, installed for real, is found and used by Unet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("segcore_unet")

FIXTURE = Path(__file__).parents[1] / "fixtures" / "segcore-example-encoder"


def _install(target: Path) -> None:
    """Install the fixture package (no dependencies) into ``target`` with uv, else pip."""
    beside = Path(sys.executable).parent / "uv"  # the test environment's own uv
    uv = str(beside) if beside.is_file() else shutil.which("uv")
    if uv:
        command = [uv, "pip", "install", "--python", sys.executable, "--no-deps",
                   "--target", str(target), str(FIXTURE)]
    else:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
                   str(FIXTURE)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    _install(target)
    assert list(target.glob("segcore_example_encoder-*.dist-info")), "not installed"
    return target


def _run(site: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGCORE_")}
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=env,
                          timeout=300, cwd=site)


def test_unet_builds_with_the_installed_encoder(site):
    script = """
import torch, segcore
assert "example-cnn" in segcore.list_encoders("example-*")
model = segcore.Unet(encoder_name="example-cnn", encoder_weights=None, in_channels=1, classes=3)
print(tuple(model(torch.randn(2, 1, 64, 64)).shape))
model = segcore.build("deeplabv3plus", encoder="example-cnn", classes=2)
print(tuple(model.eval()(torch.randn(1, 3, 64, 64)).shape))
"""
    result = _run(site, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(2,", "3,", "64,", "64)", "(1,", "2,", "64,", "64)"]


def test_plugin_shows_in_the_cli(site):
    result = _run(site, "-m", "segcore", "plugins")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("example_encoder"))
    assert "segcore-example-encoder" in line and "0.1.0" in line and "loaded" in line
    info = _run(site, "-m", "segcore", "info", "example-cnn")
    assert "ExampleCNN" in info.stdout and "scratch" in info.stdout


def test_plugin_passes_its_own_conformance_tests(site, tmp_path):
    tests = shutil.copytree(FIXTURE / "tests", tmp_path / "plugin-tests")
    result = _run(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                  str(tmp_path), str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
