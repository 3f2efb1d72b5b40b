"""The specs of segcore-dpn: names, tags, sources, preprocessing, parameter counts, listing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import segcore
from segcore.factory import get_encoder_spec
from segcore.specs import load

# From the reference documentation ("Available Encoders", DPN): weight tags, params (millions).
DOCUMENTED = {
    "dpn68": (("imagenet",), 11),
    "dpn68b": (("imagenet+5k",), 11),
    "dpn92": (("imagenet+5k",), 34),
    "dpn98": (("imagenet",), 58),
    "dpn107": (("imagenet+5k",), 84),
    "dpn131": (("imagenet",), 76),
}
# SMP 0.6.0's out_channels (encoders/dpn.py).
SMP_OUT_CHANNELS = {
    "dpn68": (3, 10, 144, 320, 704, 832),
    "dpn68b": (3, 10, 144, 320, 704, 832),
    "dpn92": (3, 64, 336, 704, 1552, 2688),
    "dpn98": (3, 96, 336, 768, 1728, 2688),
    "dpn107": (3, 128, 376, 1152, 2432, 2688),
    "dpn131": (3, 128, 352, 832, 1984, 2688),
}


def test_documented_values_are_the_catalogue_rows() -> None:
    from segcore._catalog import documented_encoders, encoder_package

    catalogue = {name: row for name, row in documented_encoders().items()
                 if name.startswith("dpn")}
    assert catalogue == {name: ("DPN", tags, float(millions))
                         for name, (tags, millions) in DOCUMENTED.items()}
    assert {encoder_package(name) for name in catalogue} == {"segcore-dpn"}


def test_listing_shows_all_encoders_without_importing_the_implementation() -> None:
    code = (
        "import json, sys, segcore\n"
        "names = segcore.list_encoders('dpn*')\n"
        "print(json.dumps({'names': names, 'modules': sorted(m for m in sys.modules if "
        "m.startswith(('segcore_dpn', 'timm')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report["names"]) == sorted(DOCUMENTED)
    assert "segcore_dpn.encoder" not in report["modules"]
    assert not any(m.startswith("timm") for m in report["modules"])


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_smp(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    spec = get_encoder_spec(name)
    assert spec.family == "DPN"
    assert tuple(spec.weights) == tags
    assert spec.params_millions == millions
    assert spec.supports_dilation
    assert spec.out_channels == SMP_OUT_CHANNELS[name]
    for tag, source in spec.weights.items():
        hub_tag = tag.replace("+", "-")  # SMP's repositories: smp-hub/dpn92.imagenet-5k
        assert source.url.startswith(f"https://huggingface.co/smp-hub/{name}.{hub_tag}/resolve/")
        assert source.url.endswith("/model.safetensors")
        revision = source.url.split("/resolve/")[1].split("/")[0]
        assert len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
        assert source.filename == f"{name}.{tag}.safetensors"
        preprocessing = source.preprocessing.as_dict()
        assert preprocessing["input_space"] == "RGB"
        assert preprocessing["input_range"] == [0.0, 1.0]
        assert preprocessing["mean"] == pytest.approx([124 / 255, 117 / 255, 104 / 255])
        assert preprocessing["std"] == pytest.approx([1 / (0.0167 * 255)] * 3)


def test_preprocessing_function_uses_the_dpn_statistics() -> None:
    params = segcore.get_preprocessing_params("dpn92", pretrained="imagenet+5k")
    assert params["mean"] == pytest.approx([0.48627, 0.45882, 0.40784], abs=1e-5)
    assert params["std"] == pytest.approx([0.23482] * 3, abs=1e-5)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_match_the_documentation(name: str) -> None:
    spec = get_encoder_spec(name)
    with torch.device("meta"):  # no memory, no initialisation time
        encoder = load(spec.factory)(name=name, depth=5, **spec.params)
    millions = sum(p.numel() for p in encoder.parameters()) / 1e6
    # The documentation truncates to whole millions (dpn68: 11.78M is listed as 11M).
    assert DOCUMENTED[name][1] <= millions < DOCUMENTED[name][1] + 1, f"{name}: {millions:.3f}M"
    assert tuple(encoder.out_channels) == SMP_OUT_CHANNELS[name]
