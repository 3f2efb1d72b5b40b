"""The specs of segcore-vgg: names, tags, sources, parameter counts, capabilities, lazy listing."""

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

# From the reference documentation ("Available Encoders", VGG): tags and params (millions).
DOCUMENTED = {
    "vgg11": (("imagenet",), 9),
    "vgg11_bn": (("imagenet",), 9),
    "vgg13": (("imagenet",), 9),
    "vgg13_bn": (("imagenet",), 9),
    "vgg16": (("imagenet",), 14),
    "vgg16_bn": (("imagenet",), 14),
    "vgg19": (("imagenet",), 20),
    "vgg19_bn": (("imagenet",), 20),
}
# SMP 0.6.0's out_channels are (64, 128, 256, 512, 512, 512): its first map is the 64-channel
# full-resolution ReLU output, which no decoder reads; segcore's contract puts the input there.
OUT_CHANNELS = (3, 128, 256, 512, 512, 512)


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('vgg*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_vgg', 'torchvision', 'timm')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(DOCUMENTED) <= set(report["names"])
    assert "segcore_vgg.encoder" not in report["modules"]
    assert not any(m.startswith(("torchvision", "timm")) for m in report["modules"])


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    spec = get_encoder_spec(name)
    assert spec.name == name and spec.family == "VGG"
    assert tuple(spec.weights) == tags
    assert spec.params_millions == millions
    assert spec.out_channels == OUT_CHANNELS
    assert spec.params["batch_norm"] is name.endswith("_bn")
    assert not spec.supports_dilation and spec.deepest_feature_pooled
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
    params = segcore.get_preprocessing_params("vgg16", pretrained="imagenet")
    assert params["std"] == [0.229, 0.224, 0.225]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_match_the_documentation(name: str) -> None:
    spec = get_encoder_spec(name)
    with torch.device("meta"):
        encoder = load(spec.factory)(name=name, depth=5, **spec.params)
    millions = sum(p.numel() for p in encoder.parameters()) / 1e6
    # The documentation truncates to whole millions (vgg16: 14.71M is listed as "14M").
    assert math.floor(millions) == DOCUMENTED[name][1], f"{name}: {millions:.3f}M parameters"
    assert tuple(encoder.out_channels) == OUT_CHANNELS


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilation_is_refused(name: str, output_stride: int) -> None:
    with pytest.raises(EncoderCapabilityError):
        segcore.get_encoder(name, output_stride=output_stride)
