"""The specs of segcore-senet: names, tags, sources, parameter counts, lazy listing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import segcore
from segcore._catalog import documented_encoders
from segcore.factory import get_encoder_spec
from segcore.specs import load

# From the reference documentation ("Available Encoders", SE-Net): weight tags and params
# (millions); test_catalogue_lists_the_same checks these against segcore/encoders.tsv.
DOCUMENTED = {
    "senet154": (("imagenet",), 113),
    "se_resnet50": (("imagenet",), 26),
    "se_resnet101": (("imagenet",), 47),
    "se_resnet152": (("imagenet",), 64),
    "se_resnext50_32x4d": (("imagenet",), 25),
    "se_resnext101_32x4d": (("imagenet",), 46),
}

# SMP 0.6.0 (encoders/senet.py): out_channels and the pinned revision of smp-hub/<name>.imagenet.
SMP_OUT_CHANNELS = {
    "senet154": (3, 128, 256, 512, 1024, 2048),
    **dict.fromkeys(
        ("se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d",
         "se_resnext101_32x4d"),
        (3, 64, 256, 512, 1024, 2048),
    ),
}
SMP_REVISIONS = {
    "senet154": "249f45efc9881ba560a0c480128edbc34ab87e40",
    "se_resnet50": "e6b4bc2dc85226c3d3474544410724a485455459",
    "se_resnet101": "71fe95cc0a27f444cf83671f354de02dc741b18b",
    "se_resnet152": "e79fc3d9d76f197bd76a2593c2054edf1083fe32",
    "se_resnext50_32x4d": "73246406d879a2b0e3fdfe6fddd56347d38f38ae",
    "se_resnext101_32x4d": "18808a4276f46421d358a9de554e0b93c2795df4",
}


def test_catalogue_lists_the_same() -> None:
    catalogue = {name: (tags, millions) for name, (family, tags, millions)
                 in documented_encoders().items() if family == "SE-Net"}
    assert catalogue == DOCUMENTED


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('se*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_senet', 'timm', 'torchvision')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(DOCUMENTED) <= set(report["names"])
    assert "segcore_senet.encoder" not in report["modules"]
    assert not any(m.startswith(("timm", "torchvision")) for m in report["modules"])


def test_plugin_module_imports_only_the_contract() -> None:
    import segcore_senet.plugin as plugin

    source = Path(plugin.__file__).read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations",
                       "from segcore.hookspecs import hookimpl",
                       "from segcore.specs import EncoderSpec, Preprocessing, WeightSource"]


def test_plugin_is_loaded() -> None:
    record = next(r for r in segcore.plugin_records() if r.name == "senet")
    assert record.status == "loaded", record.error


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_smp(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    spec = get_encoder_spec(name)
    assert spec.name == name
    assert tuple(spec.weights) == tags
    assert spec.family == "SE-Net"
    assert spec.params_millions == millions
    assert spec.supports_dilation  # SMP 0.6.0 dilates layer3/layer4 of SENetEncoder
    assert spec.out_channels == SMP_OUT_CHANNELS[name]
    assert spec.factory == "segcore_senet.encoder:build_encoder"
    for tag, source in spec.weights.items():
        assert source.url == (f"https://huggingface.co/smp-hub/{name}.{tag}/resolve/"
                              f"{SMP_REVISIONS[name]}/model.safetensors")
        assert source.filename == f"{name}.{tag}.safetensors"
        assert source.sha256 is None  # pinned hub revision: the hub reports the digest
        assert not source.delegate
        assert source.preprocessing.as_dict() == {
            "input_space": "RGB", "input_range": [0.0, 1.0],
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        }
    params = segcore.get_preprocessing_params(name, pretrained="imagenet")
    assert params["mean"] == [0.485, 0.456, 0.406] and params["input_space"] == "RGB"


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_of_the_module(name: str) -> None:
    spec = get_encoder_spec(name)
    with torch.device("meta"):  # no memory and no initialisation for 113M parameters
        encoder = load(spec.factory)(name=name, depth=5, **spec.params)
    millions = sum(p.numel() for p in encoder.parameters()) / 1e6
    # The documentation truncates to whole millions (se_resnet152: 64.77M is "64"; SMP's
    # se_resnext50_32x4d has 25.51M, "25"): the count must truncate to the documented one.
    assert int(millions) == DOCUMENTED[name][1], f"{name}: {millions:.2f}M"
    assert tuple(encoder.out_channels) == SMP_OUT_CHANNELS[name]
