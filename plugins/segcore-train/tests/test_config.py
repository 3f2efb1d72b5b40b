"""The run configuration: TOML and dicts, validation, overrides, the written file, the docs."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from segcore_train import AugmentConfig
from segcore_train.config import (
    LossTerm,
    RunConfig,
    apply_overrides,
    config_reference_markdown,
    dump_config,
    load_config,
)

from segcore.errors import InvalidOptionError, UnknownOptionError

DOCS = Path(__file__).resolve().parents[3] / "docs" / "training.md"

TOML = """
[data]
root = "data/synth"
classes = 4
ignore_index = 255

[augment]
size = [96, 128]
vflip = 0.5

[model]
architecture = "unet"
encoder = "resnet18"
options = {encoder_depth = 3, decoder_channels = [32, 16, 8]}

[[loss.terms]]
name = "dice"

[[loss.terms]]
name = "soft_ce"
weight = 0.5
options = {smooth_factor = 0.1}

[train]
epochs = 3
amp = "bf16"
clip_grad_norm = 1.0
"""


def test_a_toml_file_is_read_with_defaults_for_the_rest(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert config.data.root == "data/synth" and config.data.classes == 4
    assert config.data.ignore_index == 255 and config.data.channels is None
    assert config.augment == AugmentConfig(size=(96, 128), vflip=0.5)
    assert config.model.options == {"encoder_depth": 3, "decoder_channels": [32, 16, 8]}
    assert config.loss.terms == (LossTerm("dice", 1.0, {}),
                                 LossTerm("soft_ce", 0.5, {"smooth_factor": 0.1}))
    assert (config.train.epochs, config.train.amp, config.train.clip_grad_norm) == (3, "bf16", 1.0)
    assert config.train.batch_size == 8 and config.train.channels_last is True
    assert config.optimizer.name == "adamw" and config.schedule.name == "cosine"


def test_the_written_config_reads_back_equal(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(TOML)
    config = load_config(path, ["augment.size=none", "augment.crop=random",
                                "output.run_dir=runs/a b\"c",
                                "model.options.name_with_unicode=\"é\\u0001\""])
    written = dump_config(config, tmp_path / "config.toml")
    again = load_config(written)
    assert again == config
    assert again.augment.crop == "random"
    assert again.augment.size is None and again.output.run_dir == 'runs/a b"c'
    assert again.model.options["name_with_unicode"] == "é\x01"


def test_overrides_are_toml_values_or_strings():
    values = apply_overrides({"train": {"epochs": 2}}, [
        "train.epochs=7", "model.encoder=resnet34", "model.options.decoder_channels=[64, 32]",
        "train.deterministic=true", "optimizer.lr=3e-4", "output.run_dir=runs/x"])
    assert values == {"train": {"epochs": 7, "deterministic": True},
                      "model": {"encoder": "resnet34",
                                "options": {"decoder_channels": [64, 32]}},
                      "optimizer": {"lr": 3e-4}, "output": {"run_dir": "runs/x"}}
    with pytest.raises(InvalidOptionError, match=r"SECTION\.KEY=VALUE"):
        apply_overrides({}, ["epochs=3"])
    with pytest.raises(InvalidOptionError, match=r"train\.epochs is a value, not a table"):
        apply_overrides({"train": {"epochs": 3}}, ["train.epochs.x=1"])


@pytest.mark.parametrize(("values", "words"), [
    ({"trian": {}}, ["unknown section 'trian'", "Did you mean 'train'"]),
    ({"train": {"epoch": 3}}, ["unknown key 'epoch' in [train]", "'epochs'"]),
    ({"augment": {"hflp": 0.5}}, ["unknown key 'hflp' in [augment]", "'hflip'"]),
    ({"optimizer": {"learning_rate": 0.1}}, ["in [optimizer]"]),
    ({"loss": {"terms": [{"name": "dice", "wieght": 2}]}},
     ["unknown key 'wieght' in loss.terms[0]", "'weight'"]),
])
def test_unknown_names_get_did_you_mean(values, words):
    with pytest.raises(UnknownOptionError) as caught:
        RunConfig.from_dict({"data": {"root": "d"}, **values})
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"train": {"epochs": -1}}, "train.epochs must be a positive integer, got -1"),
    ({"train": {"epochs": 2.5}}, "train.epochs must be a positive integer, got 2.5"),
    ({"train": {"amp": "fp32"}},
     "train.amp must be one of 'no', 'bf16', 'fp16', 'auto', got 'fp32'"),
    ({"train": {"deterministic": "yes"}}, "train.deterministic must be true or false"),
    ({"optimizer": {"lr": 0}}, "optimizer.lr must be a number > 0, got 0"),
    ({"optimizer": {"betas": [0.9]}}, "optimizer.betas must be [a, b]"),
    ({"data": {"root": "d", "val_fraction": 2}}, "data.val_fraction must be a number in [0, 1]"),
    ({"augment": {"hflip": 3}}, "augment.hflip: hflip must be a number in 0..1, got 3"),
    ({"augment": {"crop": "center"}},
     "augment.crop: crop must be one of 'resized', 'random', got 'center'"),
    ({"model": {"options": {"classes": 3}}}, "model.options must not set classes"),
    ({"model": {"options": 3}}, "model.options must be a table"),
    ({"loss": {"terms": [{"name": "dice", "weight": -1}]}},
     "loss.terms[0].weight must be a number >= 0, got -1"),
])
def test_wrong_values_name_the_key(values, message):
    with pytest.raises(InvalidOptionError) as caught:
        RunConfig.from_dict({"data": {"root": "d"}, **values})
    assert message in str(caught.value)


def test_data_root_is_required_and_files_are_checked(tmp_path):
    with pytest.raises(InvalidOptionError, match=r"needs a \[data\] section with root"):
        RunConfig.from_dict({})
    with pytest.raises(InvalidOptionError, match=r"data\.root is required"):
        RunConfig.from_dict({"data": {"classes": 3}})
    with pytest.raises(InvalidOptionError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[train]\nepochs = \n")
    with pytest.raises(InvalidOptionError, match=r"broken.toml is not valid TOML.*line 2"):
        load_config(broken)


def test_sections_are_validated_when_built_directly():
    config = RunConfig.from_dict({"data": {"root": "d"}})
    with pytest.raises(InvalidOptionError, match=r"train\.batch_size must be a positive integer"):
        attrs.evolve(config.train, batch_size=0)


def test_every_key_is_documented_in_the_reference():
    reference = config_reference_markdown()
    config = RunConfig.from_dict({"data": {"root": "d"}}).to_dict()
    for section, values in config.items():
        assert f"### `[{section}]`" in reference
        for key in values:
            cell = r"((?:[^|\\]|\\\|)+)"  # a table cell; "\|" is an escaped bar
            row = re.search(rf"^\| `{key}` \|{cell}\|{cell}\|{cell}\|$", reference, re.M)
            assert row is not None, f"{section}.{key} is not in the reference"
            assert all(cell.strip() for cell in row.groups())


def test_docs_training_md_holds_the_current_reference():
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"<!-- config-reference:start -->\n(.*?)<!-- config-reference:end -->",
                      text, re.S)
    assert match is not None, f"{DOCS} has no config-reference block"
    assert match.group(1) == config_reference_markdown(), (
        f"{DOCS} is stale: replace the block between the config-reference markers with "
        "segcore_train.config_reference_markdown()")
