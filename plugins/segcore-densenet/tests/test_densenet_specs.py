"""The specs of segcore-densenet: names, tags, sources, parameter counts, capabilities, listing."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

import segcore
from segcore.errors import EncoderCapabilityError
from segcore.factory import get_encoder_spec
from segcore.specs import load

# From the reference documentation ("Available Encoders", DenseNet): tags and params (millions).
DOCUMENTED = {
    "densenet121": (("imagenet",), 6),
    "densenet169": (("imagenet",), 12),
    "densenet201": (("imagenet",), 18),
    "densenet161": (("imagenet",), 26),
}
# SMP 0.6.0's out_channels.
OUT_CHANNELS = {
    "densenet121": (3, 64, 256, 512, 1024, 1024),
    "densenet169": (3, 64, 256, 512, 1280, 1664),
    "densenet201": (3, 64, 256, 512, 1792, 1920),
    "densenet161": (3, 96, 384, 768, 2112, 2208),
}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('densenet*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_densenet', 'torchvision', 'timm')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(DOCUMENTED) <= set(report["names"])
    assert "segcore_densenet.encoder" not in report["modules"]
    assert not any(m.startswith(("torchvision", "timm")) for m in report["modules"])


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    spec = get_encoder_spec(name)
    assert spec.name == name and spec.family == "DenseNet"
    assert tuple(spec.weights) == tags
    assert spec.params_millions == millions
    assert spec.out_channels == OUT_CHANNELS[name]
    assert not spec.supports_dilation and not spec.deepest_feature_pooled
    for tag, source in spec.weights.items():
        assert source.url.startswith(f"https://huggingface.co/smp-hub/{name}.{tag}/resolve/")
        assert source.url.endswith("/model.safetensors")
        revision = source.url.split("/resolve/")[1].split("/")[0]
        assert len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
        assert source.filename == f"{name}.{tag}.safetensors"
        assert source.sha256 is None and not source.delegate
        assert source.preprocessing.as_dict() == {
            "input_space": "RGB", "input_range": [0.0, 1.0],
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        }


def test_revisions_are_pinned_per_name() -> None:
    urls = [get_encoder_spec(name).weights["imagenet"].url for name in DOCUMENTED]
    assert len({url.split("/resolve/")[1] for url in urls}) == len(DOCUMENTED)
    params = segcore.get_preprocessing_params("densenet161", pretrained="imagenet")
    assert params["mean"] == [0.485, 0.456, 0.406]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_match_the_documentation(name: str) -> None:
    spec = get_encoder_spec(name)
    with torch.device("meta"):
        encoder = load(spec.factory)(name=name, depth=5, **spec.params)
    millions = sum(p.numel() for p in encoder.parameters()) / 1e6
    # The documentation truncates to whole millions (densenet121: 6.95M is listed as "6M").
    assert math.floor(millions) == DOCUMENTED[name][1], f"{name}: {millions:.3f}M parameters"
    assert tuple(encoder.out_channels) == OUT_CHANNELS[name]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilation_is_refused(name: str, output_stride: int) -> None:
    with pytest.raises(EncoderCapabilityError):
        segcore.get_encoder(name, output_stride=output_stride)
