"""The spec of segcore-mobilenet: name, tag, source, parameter count, capabilities, listing."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import torch

import segcore
from segcore.factory import get_encoder_spec
from segcore.specs import load

NAME = "mobilenet_v2"
DOCUMENTED_TAGS, DOCUMENTED_MILLIONS = ("imagenet",), 2  # "mobilenet_v2  imagenet  2M"
OUT_CHANNELS = (3, 16, 24, 32, 96, 1280)  # SMP 0.6.0's


def test_listing_shows_the_encoder_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('mobilenet*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_mobilenet', 'torchvision', 'timm')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert NAME in report["names"]
    assert "segcore_mobilenet.encoder" not in report["modules"]
    assert not any(m.startswith(("torchvision", "timm")) for m in report["modules"])


def test_plugin_provides_only_mobilenet_v2() -> None:
    from segcore_mobilenet.plugin import segcore_encoders

    assert [spec.name for spec in segcore_encoders()] == [NAME]


def test_spec_matches_the_documentation() -> None:
    spec = get_encoder_spec(NAME)
    assert spec.family == "MobileNet"
    assert tuple(spec.weights) == DOCUMENTED_TAGS
    assert spec.params_millions == DOCUMENTED_MILLIONS
    assert spec.out_channels == OUT_CHANNELS
    assert spec.supports_dilation and not spec.deepest_feature_pooled
    source = spec.weights["imagenet"]
    assert source.url == ("https://huggingface.co/smp-hub/mobilenet_v2.imagenet/resolve/"
                          "e67aa804e17f7b404b629127eabbd224c4e0690b/model.safetensors")
    assert source.filename == "mobilenet_v2.imagenet.safetensors"
    assert source.sha256 is None and not source.delegate
    assert segcore.get_preprocessing_params(NAME, pretrained="imagenet") == {
        "input_space": "RGB", "input_range": [0.0, 1.0],
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
    }


def test_parameter_count_and_channels_match_the_documentation() -> None:
    spec = get_encoder_spec(NAME)
    with torch.device("meta"):
        encoder = load(spec.factory)(name=NAME, depth=5, **spec.params)
    millions = sum(p.numel() for p in encoder.parameters()) / 1e6
    # The documentation truncates to whole millions (2.22M is listed as "2M").
    assert math.floor(millions) == DOCUMENTED_MILLIONS, f"{millions:.3f}M parameters"
    assert tuple(encoder.out_channels) == OUT_CHANNELS
