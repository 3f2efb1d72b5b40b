"""The specs of segcore-mobileone: names, tags, sources, preprocessing, parameter counts.

The MobileOne names are newer than the reference documentation: the reference for their
parameter counts, channels and weight sources is SMP 0.6.0 (encoders/mobileone.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from segcore.factory import get_encoder_spec
from segcore.specs import load

# SMP 0.6.0: parameters of the train-time encoder as SMP builds it (classifier removed),
# out_channels, and the pinned revision of smp-hub/<name>.imagenet.
SMP = {
    "mobileone_s0": (4_268_272, (3, 48, 48, 128, 256, 1024),
                     "f52815cf0ad29278a9860c9cd5fabf19f904bedf"),
    "mobileone_s1": (3_544_192, (3, 64, 96, 192, 512, 1280),
                     "5707a98852b762cd8e0c43b5c8c729cd28496677"),
    "mobileone_s2": (5_835_648, (3, 64, 96, 256, 640, 2048),
                     "ddc3db8fa40d271902c7a8c95cee6691f617d551"),
    "mobileone_s3": (8_121_600, (3, 64, 128, 320, 768, 2048),
                     "da89b84a91b7400c366c358bfbf8dd0b2fa4dde2"),
    "mobileone_s4": (12_902_248, (3, 64, 192, 448, 896, 2048),
                     "16197c55d599076b6aae67a83d3b3f70c31b097c"),
}


def test_names_are_not_in_the_documentation_but_known_to_the_core() -> None:
    from segcore._catalog import documented_encoders, encoder_package

    assert not any(name.startswith("mobileone") for name in documented_encoders())
    assert {encoder_package(name) for name in SMP} == {"segcore-mobileone"}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('mobileone*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_mobileone', 'timm')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report["names"]) == sorted(SMP)
    assert "segcore_mobileone.encoder" not in report["modules"]
    assert not any(m.startswith("timm") for m in report["modules"])


@pytest.mark.parametrize("name", sorted(SMP))
def test_spec_matches_smp(name: str) -> None:
    count, channels, revision = SMP[name]
    spec = get_encoder_spec(name)
    assert spec.family == "MobileOne"
    assert tuple(spec.weights) == ("imagenet",)
    assert spec.out_channels == channels
    assert spec.supports_dilation
    assert spec.params_millions == pytest.approx(count / 1e6, abs=0.005)
    source = spec.weights["imagenet"]
    assert source.url == (f"https://huggingface.co/smp-hub/{name}.imagenet/resolve/{revision}"
                          "/model.safetensors")
    assert source.filename == f"{name}.imagenet.safetensors"
    assert source.preprocessing.as_dict() == {
        "input_space": "RGB", "input_range": [0.0, 1.0],
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
    }


@pytest.mark.parametrize("name", sorted(SMP))
def test_parameter_count_and_channels_match_smp(name: str) -> None:
    spec = get_encoder_spec(name)
    with torch.device("meta"):
        encoder = load(spec.factory)(name=name, depth=5, **spec.params)
    count = sum(p.numel() for p in encoder.parameters())
    assert abs(count / SMP[name][0] - 1) < 0.02, f"{name}: {count} parameters"
    assert abs(count / 1e6 - spec.params_millions) / spec.params_millions < 0.02
    assert tuple(encoder.out_channels) == SMP[name][1]
