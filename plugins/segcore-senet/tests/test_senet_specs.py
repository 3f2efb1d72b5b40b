"""The specs of segcore-senet: names, tags, sources, parameter counts, lazy listing."""

from __future__ import annotations

from pathlib import Path

import pytest

import segcore
from segcore import testing
from segcore._catalog import documented_encoders

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
    testing.check_lazy_encoder_listing("segcore_senet", DOCUMENTED, pattern="se*",
                                       forbidden=("timm", "torchvision"))


def test_plugin_module_imports_only_the_contract() -> None:
    import segcore_senet.plugin as plugin

    source = Path(plugin.__file__).read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations",
                       "from segcore.hookspecs import hookimpl",
                       "from segcore.specs import EncoderSpec, WeightSource, smp_hub_weights"]


def test_plugin_is_loaded() -> None:
    record = next(r for r in segcore.plugin_records() if r.name == "senet")
    assert record.status == "loaded", record.error


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_spec_matches_the_documentation_and_smp(name: str) -> None:
    tags, millions = DOCUMENTED[name]
    # SMP 0.6.0 dilates layer3/layer4 of SENetEncoder: supports_dilation
    testing.check_encoder_spec(name, tags=tags, family="SE-Net", params_millions=millions,
                               supports_dilation=True, out_channels=SMP_OUT_CHANNELS[name],
                               factory="segcore_senet.encoder:build_encoder")
    testing.check_smp_hub_weights(name, testing.IMAGENET_PREPROCESSING,
                                  revisions={"imagenet": SMP_REVISIONS[name]})


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_parameter_count_and_channels_of_the_module(name: str) -> None:
    # The documentation truncates to whole millions (se_resnet152: 64.77M is "64"; SMP's
    # se_resnext50_32x4d has 25.51M, "25"): the count must truncate to the documented one.
    # On the meta device: no memory and no initialisation for 113M parameters.
    testing.check_parameter_count(name, documented_millions=DOCUMENTED[name][1])
