"""A saved-model folder can never make code run (issue item 7.1).

The attack: ``config.json``'s ``encoder_params`` reach ``timm.create_model``; with
``checkpoint_path`` timm <= 1.0.25 unpickled that file with ``weights_only=False``. segcore
refuses such keys before any third-party constructor runs, and the timm floor (1.0.26) loads
checkpoints with ``weights_only=True`` anyway. ``nox -s security`` runs this module against the
oldest timm that segcore-timm allows.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import tomllib

import segcore
from segcore.errors import InvalidOptionError, SegcoreError

timm = pytest.importorskip("timm")
pytest.importorskip("segcore_timm")
pytest.importorskip("segcore_unet")

ROOT = Path(__file__).parents[2]


class _Payload:
    """Unpickling this object writes the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def _evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "marker.txt"
    checkpoint = tmp_path / "evil.pth"
    checkpoint.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    return checkpoint, marker


def _folder(tmp_path: Path, encoder_params: dict) -> Path:
    folder = tmp_path / "saved"
    folder.mkdir()
    config = {"architecture": "unet", "encoder_name": "tu-resnet18", "encoder_depth": 5,
              "in_channels": 3, "classes": 1, "decoder_channels": [16, 16, 16, 16, 16],
              "encoder_params": encoder_params}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.mark.parametrize("key", ["checkpoint_path", "pretrained_cfg_overlay"])
def test_a_malicious_folder_is_refused_before_timm_sees_it(tmp_path, key):
    checkpoint, marker = _evil_checkpoint(tmp_path)
    value = str(checkpoint) if key == "checkpoint_path" else {"file": str(checkpoint)}
    folder = _folder(tmp_path, {key: value})
    with pytest.raises(SegcoreError, match="refused"):
        segcore.from_pretrained(folder)
    with pytest.raises(SegcoreError, match="refused"):
        segcore.from_config(json.loads((folder / "config.json").read_text()))
    assert not marker.exists(), "the pickled payload ran"


def test_a_path_hidden_in_another_option_is_refused(tmp_path):
    checkpoint, marker = _evil_checkpoint(tmp_path)
    folder = _folder(tmp_path, {"act_layer": str(checkpoint)})
    with pytest.raises(InvalidOptionError, match="looks like a path"):
        segcore.from_pretrained(folder)
    assert not marker.exists()


def test_the_oldest_allowed_timm_loads_checkpoints_without_running_code(tmp_path):
    """Defence in depth: even called directly, the timm we allow refuses the pickle."""
    requirement = next(
        dependency for dependency in tomllib.loads(
            (ROOT / "plugins" / "segcore-timm" / "pyproject.toml").read_text()
        )["project"]["dependencies"] if dependency.startswith("timm")
    )
    floor = requirement.split(">=")[1].split(",")[0]
    from packaging.version import Version

    assert Version(timm.__version__) >= Version(floor)
    assert Version(floor) >= Version("1.0.26"), "timm <= 1.0.25 unpickles with weights_only=False"
    checkpoint, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - timm's own refusal, any type
        timm.create_model("resnet18", checkpoint_path=str(checkpoint))
    assert not marker.exists(), f"timm {timm.__version__} ran the pickled payload"
