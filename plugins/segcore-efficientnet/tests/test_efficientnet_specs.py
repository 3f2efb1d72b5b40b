"""The specs of segcore-efficientnet: names, tags, sources, sizes, out_channels, lazy listing."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from segcore.factory import get_encoder_spec
from segcore.specs import load

# From the reference documentation ("Available Encoders"): weight tags and params (millions).
DOCUMENTED = {
    "efficientnet-b0": (("imagenet",), 4),
    "efficientnet-b1": (("imagenet",), 6),
    "efficientnet-b2": (("imagenet",), 7),
    "efficientnet-b3": (("imagenet",), 10),
    "efficientnet-b4": (("imagenet",), 17),
    "efficientnet-b5": (("imagenet",), 28),
    "efficientnet-b6": (("imagenet",), 40),
    "efficientnet-b7": (("imagenet",), 63),
}
# SMP 0.6.0 (encoders/efficientnet.py): out_channels, and its extra tag "advprop".
SMP_OUT_CHANNELS = {
    "efficientnet-b0": (3, 32, 24, 40, 112, 320),
    "efficientnet-b1": (3, 32, 24, 40, 112, 320),
    "efficientnet-b2": (3, 32, 24, 48, 120, 352),
    "efficientnet-b3": (3, 40, 32, 48, 136, 384),
    "efficientnet-b4": (3, 48, 32, 56, 160, 448),
    "efficientnet-b5": (3, 48, 40, 64, 176, 512),
    "efficientnet-b6": (3, 56, 40, 72, 200, 576),
    "efficientnet-b7": (3, 64, 48, 80, 224, 640),
}
IMAGENET = {"input_space": "RGB", "input_range": [0.0, 1.0],
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
ADVPROP = {"input_space": "RGB", "input_range": [0.0, 1.0],
           "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('efficientnet-*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_efficientnet', 'timm', 'efficientnet_pytorch')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(DOCUMENTED) <= set(report["names"])
    assert "segcore_efficientnet.encoder" not in report["modules"]
    assert not any(m.startswith(("timm", "efficientnet_pytorch")) for m in report["modules"])


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_smp(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    spec = get_encoder_spec(name)
    # The documented tag first (the default), then SMP 0.6.0's extra "advprop".
    assert tuple(spec.weights) == (*tags, "advprop")
    assert spec.family == "EfficientNet"
    assert spec.params_millions == millions
    assert spec.supports_dilation
    assert spec.out_channels == SMP_OUT_CHANNELS[name]
    for tag, source in spec.weights.items():
        assert source.url.startswith(f"https://huggingface.co/smp-hub/{name}.{tag}/resolve/")
        assert source.url.endswith("/model.safetensors")
        revision = source.url.split("/resolve/")[1].split("/")[0]
        assert len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
        assert source.filename == f"{name}.{tag}.safetensors"
        assert source.sha256 is None  # a hub URL pinned to a commit: the hub gives the digest
        assert not source.delegate
        assert source.preprocessing.as_dict() == (IMAGENET if tag == "imagenet" else ADVPROP)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_on_the_meta_device(name: str) -> None:
    spec = get_encoder_spec(name)
    with torch.device("meta"):
        encoder = load(spec.factory)(name=name, depth=5, **spec.params)
    millions = sum(p.numel() for p in encoder.parameters()) / 1e6
    # The documentation truncates to whole millions (SMP's b1 encoder has 6.51M, listed "6M").
    assert math.floor(millions) == DOCUMENTED[name][1], f"{name}: {millions:.2f}M parameters"
    assert tuple(encoder.out_channels) == SMP_OUT_CHANNELS[name]
    assert not any(k.startswith("_fc.") for k in encoder.state_dict())
