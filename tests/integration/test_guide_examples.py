"""The example packages of the plugin guide (docs/plugins.md), installed for real, work.

The five packages under ``examples/plugins/`` are copied (so their source folders stay free of
build output), installed once with uv into a target folder, and used from subprocesses that
have that folder on ``PYTHONPATH`` and none of the user's ``SEGCORE_*`` settings: the encoder
works in architectures, the architecture builds and runs, the loss and the metric are found by
name, the command runs through ``python -m segcore``, ``segcore plugins`` shows them loaded, and
each package passes its own tests (which use the conformance kit).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "plugins"

#: example folder -> (distribution, entry-point name)
PACKAGES = {
    "segcore-example-cnn": ("segcore-example-cnn", "example_cnn"),
    "segcore-example-architecture": ("segcore-example-architecture", "example_architecture"),
    "segcore-example-loss": ("segcore-example-loss", "example_loss"),
    "segcore-example-metric": ("segcore-example-metric", "example_metric"),
    "segcore-example-command": ("segcore-example-command", "example_command"),
}
#: the encoder parameters of resnet18 (its features, without the classifier)
RESNET18_ENCODER_PARAMETERS = 11_176_512


def _uv() -> str | None:
    """uv next to the running interpreter (a uv-made environment), else on PATH."""
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the example packages installed (no dependencies: they are here)."""
    pytest.importorskip("segcore_resnet", reason="the examples are built with resnet18")
    uv = _uv()
    if uv is None:
        pytest.skip(f"uv is needed to install the example packages and is neither next to "
                    f"{sys.executable} nor on PATH (pip install uv)")
    sources = tmp_path_factory.mktemp("example-sources")
    copies = [
        shutil.copytree(EXAMPLES / name, sources / name,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        for name in PACKAGES
    ]
    target = tmp_path_factory.mktemp("example-site")
    command = [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--target",
               str(target), *map(str, copies)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    for distribution, _ in PACKAGES.values():
        pattern = distribution.replace("-", "_") + "-*.dist-info"
        assert list(target.glob(pattern)), f"{distribution} was not installed: {result.stderr}"
    return target


def _run(site: Path, *arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGCORE_")}
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=env,
                          timeout=300, cwd=cwd or site)


def _output(result: subprocess.CompletedProcess) -> str:
    return f"exit status {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _script_result(site: Path, script: str) -> subprocess.CompletedProcess:
    """``python -c script`` with the examples installed, checked to exit with status 0."""
    result = _run(site, "-c", script)
    assert result.returncode == 0, _output(result)
    return result


def _assert_script_prints(site: Path, script: str, expected: list[str]) -> None:
    """``python -c script`` with the examples installed exits 0 and prints ``expected``."""
    result = _script_result(site, script)
    assert result.stdout.splitlines() == expected, _output(result)


def test_encoder_works_in_architectures(site, tmp_path):
    pytest.importorskip("segcore_unet", reason="the example encoder is tried in a Unet")
    script = f"""
import os
os.environ["SEGCORE_CACHE"] = {str(tmp_path / "cache")!r}  # not the user's cache
import torch, segcore
from safetensors.torch import save_file
from segcore.errors import WeightsNotFoundError
assert "guide-cnn" in segcore.list_encoders()
torch.manual_seed(0)
model = segcore.Unet("guide-cnn", encoder_weights=None, in_channels=1, classes=3).eval()
with torch.no_grad():
    print(tuple(model(torch.rand(2, 1, 64, 64)).shape))
model = segcore.build("examplefpn", encoder="guide-cnn", classes=2, encoder_output_stride=8)
with torch.no_grad():
    print(model.encoder.output_stride, tuple(model.eval()(torch.rand(1, 3, 63, 45)).shape))
encoder = segcore.get_encoder("guide-cnn")
save_file(encoder.state_dict(), {str(tmp_path / "mine.safetensors")!r})
model = segcore.Unet("guide-cnn", encoder_weights={str(tmp_path / "mine.safetensors")!r},
                     in_channels=1, classes=2)
torch.testing.assert_close(model.encoder.stages[0][0].weight,
                           encoder.stages[0][0].weight.sum(1, keepdim=True))
print("weights file loaded, first convolution adapted")
try:  # the "demo" file is not published on this machine: the error says where it was looked for
    segcore.Unet("guide-cnn", encoder_weights="demo")
except WeightsNotFoundError as error:
    print("demo:", "file:///srv/segcore-weights/guide-cnn-demo.safetensors" in str(error))
"""
    _assert_script_prints(site, script, [
        "(2, 3, 64, 64)",
        "8 (1, 2, 63, 45)",
        "weights file loaded, first convolution adapted",
        "demo: True",
    ])


def test_encoder_is_described_by_segcore_info(site):
    result = _run(site, "-m", "segcore", "info", "guide-cnn")
    assert result.returncode == 0, _output(result)
    for expected in ("GuideCNN", "example_cnn", "demo"):
        assert expected in result.stdout, _output(result)


def test_architecture_builds_and_runs_on_any_size(site, tmp_path):
    script = f"""
import torch, segcore
from segcore.errors import InvalidOptionError
assert "examplefpn" in segcore.list_architectures()
torch.manual_seed(0)
model = segcore.build("examplefpn", encoder="resnet18", classes=3).eval()
assert type(model) is segcore.ExampleFPN
with torch.no_grad():
    print(tuple(model(torch.rand(2, 3, 64, 64)).shape))
    print(tuple(model(torch.rand(1, 3, 63, 45)).shape))
    x = torch.rand(1, 3, 64, 64)
    expected = model(x)
model.save_pretrained({str(tmp_path / "saved")!r})
loaded = segcore.from_pretrained({str(tmp_path / "saved")!r}).eval()
with torch.no_grad():
    torch.testing.assert_close(loaded(x), expected)
dilated = segcore.build("examplefpn", encoder="resnet18", classes=2, encoder_output_stride=16)
with torch.no_grad():
    print(dilated.encoder.output_stride, tuple(dilated.eval()(torch.rand(1, 3, 64, 64)).shape))
try:
    segcore.build("examplefpn", encoder="resnet18", pyramid_channels=0)
except InvalidOptionError as error:
    print("error:", error)
"""
    _assert_script_prints(site, script, [
        "(2, 3, 64, 64)",
        "(1, 3, 63, 45)",
        "16 (1, 2, 64, 64)",
        "error: pyramid_channels must be a positive int, got 0",
    ])


def test_loss_is_built_by_name(site):
    script = """
import torch, segcore
from segcore.errors import InvalidOptionError, UnknownOptionError
torch.manual_seed(0)
loss = segcore.build_loss("focal_tversky", mode="binary")
logits = torch.randn(2, 1, 32, 32, requires_grad=True)
target = (torch.rand(2, 1, 32, 32) > 0.5).float()
value = loss(logits, target)
value.backward()
print(value.dim(), 0 < float(value) < 1, bool(torch.isfinite(logits.grad).all()))
loss = segcore.build_loss("focal_tversky", mode="multiclass", ignore_index=255)
print(loss(torch.randn(2, 4, 16, 16), torch.randint(0, 4, (2, 16, 16))).dim())
if "dice" in segcore.list_losses():  # a weighted sum with a loss of another plugin
    combined = segcore.build_loss({"focal_tversky": 1.0, "dice": 0.5}, mode="binary")
    combined(logits, target)
    print(sorted(combined.last_values))
else:
    print(["dice", "focal_tversky"])
for options in ({"alpha": 2.0}, {"gama": 1.0}):
    try:
        segcore.build_loss("focal_tversky", mode="binary", **options)
    except (InvalidOptionError, UnknownOptionError) as error:
        print(type(error).__name__, error)
"""
    result = _script_result(site, script)
    lines = result.stdout.splitlines()
    assert lines[:3] == ["0 True True", "0", "['dice', 'focal_tversky']"], _output(result)
    assert lines[3] == "InvalidOptionError focal_tversky: alpha must lie in [0, 1], got 2.0"
    assert lines[4].startswith("UnknownOptionError loss 'focal_tversky' takes no option 'gama'")
    assert "Did you mean 'gamma'?" in lines[4]


def test_metric_is_found_by_name(site):
    script = """
import torch, segcore
dice = segcore.get_metric("dice_coefficient")
tp, fp = torch.tensor([[8, 0], [3, 5]]), torch.tensor([[2, 0], [1, 0]])
fn, tn = torch.tensor([[0, 0], [2, 5]]), torch.tensor([[6, 16], [10, 6]])
print(round(float(dice(tp, fp, fn, tn, reduction="micro")), 4))
print(tuple(dice(tp, fp, fn, tn).shape))
if "f1_score" in segcore.list_metrics():  # the same score as segcore-metrics' F1
    f1 = segcore.get_metric("f1_score")
    for reduction in ("micro", "macro", "micro-imagewise", "macro-imagewise"):
        torch.testing.assert_close(dice(tp, fp, fn, tn, reduction=reduction),
                                   f1(tp, fp, fn, tn, reduction=reduction, zero_division=1.0))
print("ok")
"""
    result = _script_result(site, script)
    assert result.stdout.split() == [str(round(32 / 42, 4)), "(2,", "2)", "ok"], _output(result)


def test_command_runs_through_the_segcore_command(site):
    result = _run(site, "-m", "segcore", "count-params", "examplefpn", "--encoder", "resnet18",
                  "--classes", "3")
    assert result.returncode == 0, _output(result)
    match = re.fullmatch(r"examplefpn-resnet18: ([\d,]+) parameters \(([\d,]+) in the encoder\)",
                         result.stdout.strip())
    assert match, _output(result)
    total, encoder = (int(group.replace(",", "")) for group in match.groups())
    assert encoder == RESNET18_ENCODER_PARAMETERS and total > encoder


def test_command_errors_are_reported_by_segcore(site):
    result = _run(site, "-m", "segcore", "--debug", "count-params", "examplefnp",
                  "--encoder", "resnet18")
    assert result.returncode == 2, _output(result)
    assert result.stdout == ""
    assert "segcore: error: unknown architecture 'examplefnp'" in result.stderr
    assert "Did you mean 'examplefpn'?" in result.stderr
    assert "Traceback" in result.stderr  # --debug


def test_segcore_plugins_shows_them_loaded(site):
    result = _run(site, "-m", "segcore", "plugins")
    assert result.returncode == 0, _output(result)
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for distribution, entry_point in PACKAGES.values():
        assert entry_point in lines, _output(result)
        assert lines[entry_point].split()[1:] == [distribution, "0.1.0", "loaded"], (
            lines[entry_point]
        )


@pytest.mark.parametrize("name", list(PACKAGES))
def test_package_passes_its_own_tests(site, tmp_path, name):
    package = tmp_path / name
    shutil.copytree(EXAMPLES / name / "tests", package / "tests",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLES / name / "conftest.py", package / "conftest.py")
    result = _run(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                  str(package), str(package / "tests"), cwd=package)
    assert result.returncode == 0, _output(result)
    assert re.search(r"\d+ passed", result.stdout), _output(result)
    assert "skipped" not in result.stdout, _output(result)
    assert "DeprecationWarning" not in result.stdout, _output(result)  # contract 1.0 only
