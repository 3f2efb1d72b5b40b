"""Saved-model folders both ways (issue "Interop", item 2): a folder written by SMP 0.6.0's
``save_pretrained`` loads with ``segcore.from_pretrained`` and one written by segcore loads with
SMP's ``smp.from_pretrained``, with equal outputs, for every installed architecture (and a tu-
encoder with an encoder parameter, which SMP keeps as a top-level key)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")

import smp_pairs  # noqa: E402

import segcore  # noqa: E402

X = torch.randn(2, 3, 128, 128)  # PAN needs 128 (SMP refuses less)
#: the architectures with resnet18 (small) where they take it, with the aux head on
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    name: ("resnet18" if encoder == "resnet34" else encoder,
           {**options, "aux_params": {"classes": 3, "dropout": 0.2}})
    for name, (_, _, encoder, options) in smp_pairs.MODELS.items()
}
CASES["unet-tu"] = ("tu-resnet18", {"drop_path_rate": 0.05, "decoder_attention_type": "scse"})


def _architecture(case: str) -> str:
    return case.split("-")[0]


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SMP's deprecation and timm's warnings
        return function(*args, **kwargs)


def _smp_model(case: str) -> torch.nn.Module:
    encoder, options = CASES[case]
    class_name = smp_pairs.MODELS[_architecture(case)][1]
    torch.manual_seed(0)
    model = _quiet(getattr(smp, class_name), encoder_name=encoder, encoder_weights=None,
                   classes=2, **options)
    smp_pairs.trained_looking(model)
    return model.eval()


def test_every_installed_architecture_is_covered() -> None:
    assert set(segcore.list_architectures()) <= {_architecture(c) for c in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_smp_folder_loads_in_segcore(case: str, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip(smp_pairs.MODELS[_architecture(case)][0])
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    reference = _smp_model(case)
    _quiet(reference.save_pretrained, tmp_path / "smp", metrics={"iou": 0.5}, dataset="x")
    ours = segcore.from_pretrained(tmp_path / "smp")
    assert type(ours).__name__ == type(reference).__name__
    assert not ours.training
    smp_pairs.assert_same_outputs(reference, ours, X)


@pytest.mark.parametrize("case", list(CASES))
def test_segcore_folder_loads_in_smp(case: str, tmp_path: Path) -> None:
    pytest.importorskip(smp_pairs.MODELS[_architecture(case)][0])
    reference = _smp_model(case)
    ours = segcore.get_architecture_class(_architecture(case))(
        encoder_name=CASES[case][0], encoder_weights=None, classes=2, **CASES[case][1])
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.eval().save_pretrained(tmp_path / "ours")
    theirs = _quiet(smp.from_pretrained, str(tmp_path / "ours"))
    assert type(theirs).__name__ == type(ours).__name__
    smp_pairs.assert_same_outputs(theirs.eval(), ours, X)
