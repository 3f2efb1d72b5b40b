"""The specs of segcore-resnet: names, tags, sources, parameter counts, lazy listing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import segcore
from segcore.factory import get_encoder_spec
from segcore.specs import load
from segcore.weights import resolve_tag

# From the reference documentation ("Available Encoders"): weight tags and params (millions).
DOCUMENTED = {
    "resnet18": (("imagenet", "ssl", "sswl"), 11),
    "resnet34": (("imagenet",), 21),
    "resnet50": (("imagenet", "ssl", "sswl"), 23),
    "resnet101": (("imagenet",), 42),
    "resnet152": (("imagenet",), 58),
    "resnext50_32x4d": (("imagenet", "ssl", "sswl"), 22),
    "resnext101_32x4d": (("ssl", "sswl"), 42),
    "resnext101_32x8d": (("imagenet", "instagram", "ssl", "sswl"), 86),
    "resnext101_32x16d": (("instagram", "ssl", "sswl"), 191),
    "resnext101_32x32d": (("instagram",), 466),
    "resnext101_32x48d": (("instagram",), 826),
}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('res*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_resnet', 'torchvision')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(DOCUMENTED) <= set(report["names"])
    assert "segcore_resnet.encoder" not in report["modules"]
    assert not any(m.startswith("torchvision") for m in report["modules"])


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    spec = get_encoder_spec(name)
    assert tuple(spec.weights) == tags
    assert spec.family == ("ResNeXt" if name.startswith("resnext") else "ResNet")
    assert spec.params_millions == millions
    assert spec.supports_dilation
    basic = name in ("resnet18", "resnet34")
    expected_channels = (3, 64, 64, 128, 256, 512) if basic else (3, 64, 256, 512, 1024, 2048)
    assert spec.out_channels == expected_channels
    for tag, source in spec.weights.items():
        smp_tag = "swsl" if tag == "sswl" else tag
        assert source.url.startswith(f"https://huggingface.co/smp-hub/{name}.{smp_tag}/resolve/")
        revision = source.url.split("/resolve/")[1].split("/")[0]
        assert len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
        assert source.filename == f"{name}.{tag}.safetensors"
        assert source.sha256 is None
        assert source.preprocessing.as_dict() == {
            "input_space": "RGB", "input_range": [0.0, 1.0],
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        }


def test_smp_spelling_swsl_is_an_alias_of_sswl() -> None:
    spec = get_encoder_spec("resnet50")
    tag, source = resolve_tag(spec, "swsl")
    assert tag == "sswl"
    assert "/smp-hub/resnet50.swsl/" in source.url
    params = segcore.get_preprocessing_params("resnet50", pretrained="swsl")
    assert params["mean"] == [0.485, 0.456, 0.406]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_matches_the_documentation(name: str) -> None:
    spec = get_encoder_spec(name)
    with torch.device("meta"):  # no memory for the 826M-parameter model
        encoder = load(spec.factory)(name=name, depth=5, **spec.params)
    millions = sum(p.numel() for p in encoder.parameters()) / 1e6
    assert abs(millions - DOCUMENTED[name][1]) < 1.0, f"{name}: {millions:.2f}M parameters"
