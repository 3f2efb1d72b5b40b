"""Saved-model folders: the format segcore writes (which SMP 0.6.0 also reads), the formats it
reads (its own older one, SMP's), fine-tuning loads (another class count, ``strict=False``) and
encoder-only transfer (``encoder_weights=<folder>``). SMP itself is only in the parity session
(tests/parity/test_parity_folders.py); here SMP's format is written by hand as SMP writes it."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import segcore
from segcore import testing
from segcore.errors import (
    InvalidOptionError,
    SkippedWeightsWarning,
    UnknownNameError,
    WeightsFileError,
    WeightsNotFoundError,
)

pytest.importorskip("segcore_unet")
pytest.importorskip("segcore_fpn")
pytest.importorskip("segcore_resnet")

X = torch.randn(2, 3, 64, 64)


def _unet(**options) -> segcore.SegmentationModel:
    torch.manual_seed(0)
    model = segcore.build("unet", encoder="resnet18", decoder_channels=(32, 16, 16, 8, 8),
                          **options)
    return testing.randomise_weights(model).eval()


def _same_outputs(first: torch.nn.Module, second: torch.nn.Module, x: torch.Tensor = X) -> None:
    with torch.no_grad():
        testing.assert_same_outputs(second.eval()(x), first.eval()(x))


@pytest.fixture(autouse=True)
def _offline(monkeypatch) -> None:
    """Nothing here may download: a folder's weights are its own."""
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# -- the format written ----------------------------------------------------------------------
def test_config_json_is_readable_by_smp_and_segcore(tmp_path: Path) -> None:
    model = _unet(classes=2, aux_params={"classes": 3})
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["_model_class"] == "Unet"  # what SMP's from_pretrained reads
    assert config["_architecture"] == "unet"
    assert config["encoder_weights"] is None  # SMP would otherwise download imagenet weights
    assert "architecture" not in config and "encoder_params" not in config  # SMP passes
    # unknown keys to the encoder (timm refuses them)
    assert config["decoder_channels"] == [32, 16, 16, 8, 8]
    assert not (tmp_path / "m" / "README.md").exists()  # a card only when asked for
    _same_outputs(model, segcore.from_pretrained(tmp_path / "m"))


def test_encoder_parameters_are_top_level_keys_as_smp_kwargs(tmp_path: Path) -> None:
    pytest.importorskip("segcore_timm")
    model = segcore.build("unet", encoder="tu-resnet18", drop_path_rate=0.1,
                          decoder_channels=(32, 16, 16, 8, 8)).eval()
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["drop_path_rate"] == 0.1
    loaded = segcore.from_pretrained(tmp_path / "m")
    assert loaded.config["encoder_params"] == {"drop_path_rate": 0.1}
    _same_outputs(model, loaded)


def test_the_older_segcore_format_still_loads(tmp_path: Path) -> None:
    model = _unet(classes=2)
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps(model.config))  # the 0.x format
    assert "architecture" in model.config and "_model_class" not in model.config
    _same_outputs(model, segcore.from_pretrained(tmp_path / "m"))


def _smp_style_folder(model: segcore.SegmentationModel, folder: Path,
                      encoder_weights: str | None = "imagenet") -> Path:
    """A folder as SMP 0.6.0's save_pretrained writes it: the constructor's arguments (SMP
    records ``encoder_weights`` as given), ``_model_class``, the weights in safetensors."""
    config = model.config
    config.pop("architecture")
    config.update(config.pop("encoder_params"))
    config.update({"_model_class": type(model).__name__, "encoder_weights": encoder_weights})
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config, sort_keys=True, indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_an_smp_folder_loads_without_downloading(tmp_path: Path) -> None:
    model = _unet(classes=3, aux_params={"classes": 2, "dropout": 0.1})
    folder = _smp_style_folder(model, tmp_path / "smp")  # says encoder_weights="imagenet"
    loaded = segcore.from_pretrained(folder)  # offline: nothing is fetched
    assert type(loaded).__name__ == "Unet" and loaded.config["classes"] == 3
    _same_outputs(model, loaded)
    assert segcore.from_config(json.loads((folder / "config.json").read_text())
                               | {"encoder_weights": None}).config == model.config


def test_a_class_no_plugin_provides_is_named(tmp_path: Path) -> None:
    folder = _smp_style_folder(_unet(), tmp_path / "smp")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "_model_class": "Unetz"}))
    with pytest.raises(UnknownNameError, match=r"'Unetz'.*segcore list architectures"):
        segcore.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "_model_class": "build"}))
    with pytest.raises(UnknownNameError, match="not a segmentation model class"):
        segcore.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "_model_class": 3}))
    with pytest.raises(WeightsFileError, match="'_model_class' must be a string"):
        segcore.from_pretrained(folder)


def test_a_folder_with_weights_of_another_kind_in_the_config_is_refused(tmp_path: Path) -> None:
    folder = _smp_style_folder(_unet(), tmp_path / "smp")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "encoder_weights": {"a": 1}}))
    with pytest.raises(WeightsFileError, match="'encoder_weights' must be null or a tag"):
        segcore.from_pretrained(folder)


def test_model_card_is_written_on_request(tmp_path: Path) -> None:
    pytest.importorskip("segcore.hub")
    model = _unet(classes=2)
    model.save_pretrained(tmp_path / "m", metrics={"miou": 0.5}, dataset="fields")
    card = (tmp_path / "m" / "README.md").read_text()
    assert card.startswith("---\n") and re.search(r'^library_name: "?segcore"?$', card, re.M)
    assert "resnet18" in card and "fields" in card and "0.5" in card
    model.save_pretrained(tmp_path / "n", model_card=True)
    assert (tmp_path / "n" / "README.md").is_file()


# -- fine-tuning loads -----------------------------------------------------------------------
def test_other_class_count_strict_names_the_first_mismatch(tmp_path: Path) -> None:
    _unet(classes=3).save_pretrained(tmp_path / "m")
    with pytest.raises(WeightsFileError) as error:
        segcore.from_pretrained(tmp_path / "m", classes=5)
    message = str(error.value)
    assert "'segmentation_head.0.weight'" in message
    assert "[3, 8, 3, 3]" in message and "[5, 8, 3, 3]" in message
    assert "strict=False" in message


def test_other_class_count_keeps_what_fits_and_warns(tmp_path: Path) -> None:
    saved = _unet(classes=3)
    saved.save_pretrained(tmp_path / "m")
    with pytest.warns(SkippedWeightsWarning) as record:
        model = segcore.from_pretrained(tmp_path / "m", classes=5, strict=False)
    message = str(record[0].message)
    assert "segmentation_head.0.weight: file [3, 8, 3, 3] -> model [5, 8, 3, 3]" in message
    assert "segmentation_head.0.bias: file [3] -> model [5]" in message
    assert not model.training  # as SMP's from_pretrained
    assert model.config["classes"] == 5 and model(X).shape == (2, 5, 64, 64)
    kept = {k: v for k, v in saved.state_dict().items() if not k.startswith("segmentation_head")}
    state = model.state_dict()
    for key, value in kept.items():
        assert torch.equal(state[key], value), key
    fresh = segcore.build("unet", encoder="resnet18", decoder_channels=(32, 16, 16, 8, 8),
                          classes=5)
    assert state["segmentation_head.0.weight"].shape == fresh.segmentation_head[0].weight.shape


def test_overrides_add_an_aux_head_and_change_the_activation(tmp_path: Path) -> None:
    _unet(classes=2).save_pretrained(tmp_path / "m")
    with pytest.warns(SkippedWeightsWarning, match=r"classification_head.*not in the file"):
        model = segcore.from_pretrained(tmp_path / "m", aux_params={"classes": 4},
                                        activation="sigmoid", strict=False)
    with torch.no_grad():
        mask, labels = model.eval()(X)
    assert labels.shape == (2, 4) and float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    assert model.config["activation"] == "sigmoid"
    model = segcore.from_pretrained(tmp_path / "m", activation=torch.nn.Tanh)
    with torch.no_grad():
        assert float(model.eval()(X).min()) >= -1.0


@pytest.mark.parametrize("key", ["encoder_name", "architecture", "encoder_weights"])
def test_overrides_cannot_change_what_the_weights_belong_to(tmp_path: Path, key: str) -> None:
    _unet().save_pretrained(tmp_path / "m")
    with pytest.raises(InvalidOptionError, match=f"cannot change '{key}'"):
        segcore.from_pretrained(tmp_path / "m", **{key: "resnet34"})


def test_revision_is_for_hub_ids_only(tmp_path: Path) -> None:
    _unet().save_pretrained(tmp_path / "m")
    with pytest.raises(InvalidOptionError, match="local folder: drop revision"):
        segcore.from_pretrained(tmp_path / "m", revision="main")


@pytest.mark.parametrize(("options", "words"), [
    ({"repo_id": "owner/unet"}, "repo_id are for uploading to the Hub: pass push_to_hub=True"),
    ({"token": "hf_x", "private": True}, "token, private are for uploading"),
    ({"push_to_hub": True}, "needs repo_id='owner/name'"),
])
def test_save_pretrained_hub_options_need_each_other(tmp_path: Path, options, words) -> None:
    with pytest.raises(InvalidOptionError, match=re.escape(words)):
        _unet().save_pretrained(tmp_path / "saved", **options)
    assert not (tmp_path / "saved").exists()  # refused before anything is written


def test_load_state_dict_strict_false_keeps_what_fits() -> None:
    source = _unet(classes=3).state_dict()
    model = segcore.build("unet", encoder="resnet18", decoder_channels=(32, 16, 16, 8, 8),
                          classes=6, aux_params={"classes": 2})
    before = model.segmentation_head[0].weight.detach().clone()
    with pytest.warns(SkippedWeightsWarning) as record:
        result = model.load_state_dict(source, strict=False)
    assert sorted(result.missing_keys) == ["classification_head.3.bias",
                                           "classification_head.3.weight"]
    assert result.unexpected_keys == []
    assert "segmentation_head.0.weight: file [3, 8, 3, 3] -> model [6, 8, 3, 3]" in \
        str(record[0].message)
    assert torch.equal(model.segmentation_head[0].weight, before)  # kept its initialisation
    assert torch.equal(model.encoder.conv1.weight, source["encoder.conv1.weight"])


def test_load_state_dict_strict_raises_a_segcore_error() -> None:
    model = _unet(classes=6)
    with pytest.raises(WeightsFileError, match=r"segmentation_head\.0\.weight.*strict=False"):
        model.load_state_dict(_unet(classes=3).state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a state that fits loads strictly without a warning
        result = model.load_state_dict(_unet(classes=6).state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []


# -- encoder-only transfer -------------------------------------------------------------------
def test_encoder_of_a_saved_model_initialises_another_architecture(tmp_path: Path) -> None:
    unet = _unet(classes=2)
    unet.save_pretrained(tmp_path / "unet")
    fpn = segcore.build("fpn", encoder="resnet18", encoder_weights=tmp_path / "unet",
                        classes=4)
    for key, value in unet.encoder.state_dict().items():
        assert torch.equal(fpn.encoder.state_dict()[key], value), key
    one_channel = segcore.build("fpn", encoder="resnet18", in_channels=1,
                                encoder_weights=str(tmp_path / "unet"))
    torch.testing.assert_close(one_channel.encoder.conv1.weight,
                               unet.encoder.conv1.weight.sum(1, keepdim=True))


def test_encoder_of_an_smp_folder_and_of_a_four_channel_model(tmp_path: Path) -> None:
    four = _unet(in_channels=4)
    folder = _smp_style_folder(four, tmp_path / "smp")
    fpn = segcore.build("fpn", encoder="resnet18", in_channels=4, encoder_weights=folder)
    assert torch.equal(fpn.encoder.conv1.weight, four.encoder.conv1.weight)
    with pytest.raises(WeightsFileError, match=r"takes 4 input channels.*not 3"):
        segcore.build("fpn", encoder="resnet18", encoder_weights=folder)


def test_encoder_of_another_encoder_is_refused(tmp_path: Path) -> None:
    _unet().save_pretrained(tmp_path / "unet")
    with pytest.raises(WeightsFileError, match=r"encoder 'resnet18'.*cannot initialise"):
        segcore.build("fpn", encoder="resnet34", encoder_weights=tmp_path / "unet")


def test_a_folder_without_config_still_explains_itself(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsFileError, match="is a directory"):
        segcore.build("fpn", encoder="resnet18", encoder_weights=tmp_path / "empty")
    with pytest.raises(WeightsNotFoundError, match=r"has no config\.json"):
        segcore.from_pretrained(tmp_path / "empty")


# -- what each model supports ----------------------------------------------------------------
def test_capability_flags_follow_the_export_matrix() -> None:
    """``_is_torch_scriptable`` (SMP's flag) is False exactly where docs/export.md records that
    torch.jit.script cannot work."""
    results = Path(__file__).with_name("export_results.json")
    if not results.is_file():
        pytest.skip("the export matrix has not been recorded")
    cells = [cell for cell in json.loads(results.read_text())["cells"]
             if cell["method"] == "torch.jit.script"]
    scripted = {cell["architecture"] for cell in cells if cell["outcome"] == "pass"}
    refused = {cell["architecture"] for cell in cells} - scripted
    for architecture in segcore.list_architectures():
        model_class = segcore.get_architecture_class(architecture)
        assert model_class._is_torch_scriptable == (architecture not in refused), architecture
        assert model_class._is_torch_exportable and model_class._is_torch_compilable
