"""Weights: state dicts of SMP 0.6.0 and of SMP 0.2-0.4, and timm's weights through the cache.

Nothing is downloaded: the tests write the files (a weights file, or a Hugging Face cache entry
of the repository timm loads from), and the hub is offline (``conftest.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from segcore_timm_families.encoder import remap_state_dict

import segcore
from segcore import testing
from segcore.errors import UnknownWeightsError, WeightsError, WeightsNotFoundError

# name: (timm model, the first convolution of SMP 0.6.0's layout)
SMALL_PER_FAMILY = {
    "timm-resnest14d": ("resnest14d", "model.conv1.0.weight"),
    "timm-res2net50_48w_2s": ("res2net50_48w_2s", "model.conv1.weight"),
    "timm-regnetx_002": ("regnetx_002", "model.stem.conv.weight"),
    "timm-gernet_s": ("gernet_s", "model.stem.conv.weight"),
    "timm-mobilenetv3_small_075": ("tf_mobilenetv3_small_075", "model.conv_stem.weight"),
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _era_encoder_state(timm_model: str) -> dict[str, torch.Tensor]:
    """What SMP 0.2-0.4's encoder state dict looked like (written from its module tree).

    ``ResNestEncoder(ResNet)``, ``Res2NetEncoder(ResNet)``, ``RegNetEncoder(RegNet)`` and
    ``GERNetEncoder(ByobNet)`` were timm's network with the classifier deleted: no prefix,
    nested ``stages.<i>``. ``MobileNetV3Encoder`` kept ``timm.create_model(...,
    features_only=True)`` in ``self.model``.
    """
    if timm_model.startswith("tf_mobilenetv3"):
        features = timm.create_model(timm_model, features_only=True)
        return testing.random_state_dict({"model." + k: v
                                          for k, v in features.state_dict().items()})
    network = timm.create_model(timm_model)
    classifier = ("fc.", "head.")
    return testing.random_state_dict({k: v for k, v in network.state_dict().items()
                                      if not k.startswith(classifier)})


@pytest.mark.parametrize("name", sorted(SMALL_PER_FAMILY))
def test_state_dict_of_the_documentation_era_loads(name: str, tmp_path: Path) -> None:
    timm_model, first_conv = SMALL_PER_FAMILY[name]
    era = _era_encoder_state(timm_model)
    path = tmp_path / "era.pth"
    torch.save(era, path)
    encoder = segcore.get_encoder(name, weights=path)  # strict loading, after remap
    state = encoder.state_dict()
    assert len(state) == len(era)
    for key, value in era.items():
        ours = key if key.startswith("model.") else "model." + key.replace("stages.", "stages_", 1)
        torch.testing.assert_close(state[ours], value, rtol=0, atol=0)
    assert first_conv in state


@pytest.mark.parametrize("name", ["timm-regnetx_002", "timm-gernet_s"])
def test_timm_classifier_checkpoint_loads_without_its_classifier(name: str,
                                                                 tmp_path: Path) -> None:
    # SMP 0.2-0.4 loaded timm's ImageNet checkpoints, dropping the classifier (head.fc).
    timm_model = SMALL_PER_FAMILY[name][0]
    checkpoint = testing.random_state_dict(timm.create_model(timm_model))
    assert "head.fc.weight" in checkpoint
    path = tmp_path / "timm.safetensors"
    save_file(checkpoint, str(path))
    encoder = segcore.get_encoder(name, weights=path)
    torch.testing.assert_close(encoder.state_dict()["model.stem.conv.weight"],
                               checkpoint["stem.conv.weight"], rtol=0, atol=0)


def test_state_dict_of_smp_0_6_loads_unchanged(tmp_path: Path) -> None:
    reference = segcore.get_encoder("timm-gernet_s")
    state = testing.random_state_dict(reference)
    assert all(k.startswith("model.") for k in state)
    assert any(k.startswith("model.stages_0.") for k in state)
    path = tmp_path / "smp06.safetensors"
    save_file(state, str(path))
    loaded = segcore.get_encoder("timm-gernet_s", weights=path).state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_remap_rules() -> None:
    w = torch.zeros(1)
    modules = {"stem", "stages_0", "stages_1", "final_conv"}
    remapped = remap_state_dict({
        "stem.conv.weight": w,                 # era: prefixed
        "stages.1.0.conv1_kxk.conv.weight": w,  # era: nested stage -> flattened
        "stages.4.0.conv.weight": w,           # a stage beyond this depth: dropped
        "head.fc.weight": w,                   # the classifier: dropped
        "model.final_conv.conv.weight": w,     # SMP 0.6.0: kept as it is
        "model.unknown.weight": w,             # prefixed keys are never dropped
    }, modules)
    assert set(remapped) == {"model.stem.conv.weight", "model.stages_1.0.conv1_kxk.conv.weight",
                             "model.final_conv.conv.weight", "model.unknown.weight"}
    # Without flattened stages (ResNet, RegNet, MobileNetV3) nothing is renamed.
    assert set(remap_state_dict({"stages.0.w": w}, {"stages"})) == {"model.stages.0.w"}


def test_era_state_dict_of_a_shallower_encoder(tmp_path: Path) -> None:
    era = _era_encoder_state("regnetx_002")  # an era encoder always had every stage
    path = tmp_path / "era.pth"
    torch.save(era, path)
    encoder = segcore.get_encoder("timm-regnetx_002", depth=3, weights=path)
    # depth 3 ends at reduction 8 (s2): timm's feature extractor has no s3, s4
    assert not any(k.startswith(("model.s3.", "model.s4.")) for k in encoder.state_dict())
    torch.testing.assert_close(encoder.state_dict()["model.s2.b1.conv1.conv.weight"],
                               era["s2.b1.conv1.conv.weight"], rtol=0, atol=0)


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(testing.random_state_dict(timm.create_model("regnetx_002")), path)
    with pytest.raises(WeightsError, match="missing"):
        segcore.get_encoder("timm-gernet_s", weights=path)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_convolution_adapted_from_a_weights_file(in_channels: int,
                                                       tmp_path: Path) -> None:
    era = _era_encoder_state("regnetx_002")
    path = tmp_path / "era.pth"
    torch.save(era, path)
    # regnetx_002's era keys are ours without the "model." prefix (no nested stages)
    testing.check_first_conv_adaptation("timm-regnetx_002", path,
                                        {"model." + k: v for k, v in era.items()},
                                        "model.stem.conv.weight", in_channels,
                                        out_channels=(3, 32, 24, 56, 152, 368))


# -- timm's weights, "imagenet": the tag -> timm/<model>.<tag> -> Hugging Face cache -> module --
def _hub_entry(cache: Path, repository: str, state: dict[str, torch.Tensor]) -> Path:
    """Write ``state`` where the Hugging Face hub keeps ``model.safetensors`` of ``repository``."""
    folder = cache / f"models--{repository.replace('/', '--')}"
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    save_file(state, str(snapshot / "model.safetensors"))
    return snapshot / "model.safetensors"


@pytest.fixture
def published(hf_cache: Path) -> dict[str, torch.Tensor]:
    """timm's ImageNet checkpoint of regnetx_002 (random values) in the Hugging Face cache."""
    state = testing.random_state_dict(timm.create_model("regnetx_002"))
    _hub_entry(hf_cache, "timm/regnetx_002.pycls_in1k", state)
    return state


@pytest.mark.parametrize("offline", [False, True])
def test_imagenet_weights_come_from_timm_repository(published, offline: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if offline:
        monkeypatch.setenv("SEGCORE_OFFLINE", "1")  # a cached file is still used
    encoder = segcore.get_encoder("timm-regnetx_002", weights="imagenet")
    state = encoder.state_dict()
    for key in ("stem.conv.weight", "s2.b1.conv2.conv.weight", "s4.b1.conv3.bn.running_mean"):
        torch.testing.assert_close(state["model." + key], published[key], rtol=0, atol=0)
    assert segcore.get_encoder("timm-regnetx_002", weights=True).state_dict()[
        "model.stem.conv.weight"].equal(published["stem.conv.weight"])


@pytest.mark.parametrize("in_channels", [1, 4])
def test_imagenet_weights_on_other_input_channels(published, in_channels: int) -> None:
    encoder_state = {"model." + k: v for k, v in published.items() if not k.startswith("head.")}
    testing.check_first_conv_adaptation("timm-regnetx_002", "imagenet", encoder_state,
                                        "model.stem.conv.weight", in_channels)


def test_architecture_default_weights_use_the_cache(published) -> None:
    if "unet" not in segcore.list_architectures():
        pytest.skip("segcore-unet is not installed (the package's tests alone with the core)")
    model = segcore.Unet("timm-regnetx_002", classes=2)  # encoder_weights="imagenet"
    torch.testing.assert_close(model.encoder.state_dict()["model.stem.conv.weight"],
                               published["stem.conv.weight"], rtol=0, atol=0)


def test_offline_error_names_what_to_download_and_where(hf_cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as caught:
        segcore.get_encoder("timm-resnest14d", weights="imagenet")
    message = str(caught.value)
    assert "'timm/resnest14d.gluon_in1k'" in message
    assert "'model.safetensors'" in message
    assert str(hf_cache / "models--timm--resnest14d.gluon_in1k") in message
    assert "SEGCORE_OFFLINE" in message and "encoder_weights=None" in message


def test_failed_download_error_names_what_to_download_and_where(hf_cache: Path) -> None:
    # Not SEGCORE_OFFLINE: timm tries the hub, which is offline in the tests.
    with pytest.raises(WeightsNotFoundError) as caught:
        segcore.get_encoder("timm-mobilenetv3_small_075", weights="imagenet")
    message = str(caught.value)
    assert "'timm/tf_mobilenetv3_small_075.in1k'" in message
    assert str(hf_cache / "models--timm--tf_mobilenetv3_small_075.in1k") in message
    assert "could not download" in message


def test_unknown_tag_lists_the_documented_one() -> None:
    with pytest.raises(UnknownWeightsError, match="imagenet"):
        segcore.get_encoder("timm-regnetx_002", weights="ssl")


# -- a download: timm fetches the file from the hub (here a server on 127.0.0.1) into the cache --
@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[testing.LoopbackServer]:
    """The part of the Hugging Face hub that ``hf_hub_download`` uses, on 127.0.0.1: HEAD and
    GET of ``hub.files`` (404 for any other path); the hub is online for the test."""
    from huggingface_hub import constants

    with testing.serve_files({}, headers={"X-Repo-Commit": COMMIT}) as server:
        monkeypatch.setattr(constants, "ENDPOINT", server.base_url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            server.base_url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        yield server


def test_imagenet_weights_are_downloaded_by_timm_into_the_cache(hub, hf_cache: Path,
                                                               tmp_path: Path) -> None:
    state = testing.random_state_dict(timm.create_model("gernet_s"))
    save_file(state, str(tmp_path / "model.safetensors"))
    path = "/timm/gernet_s.idstcv_in1k/resolve/main/model.safetensors"
    hub.files[path] = (tmp_path / "model.safetensors").read_bytes()
    hub.headers["ETag"] = f'"{hashlib.sha256(hub.files[path]).hexdigest()}"'
    encoder = segcore.get_encoder("timm-gernet_s", in_channels=1, weights="imagenet")
    assert ("GET", path) in hub.calls
    cached = (hf_cache / "models--timm--gernet_s.idstcv_in1k" / "snapshots" / COMMIT /
              "model.safetensors")
    assert cached.is_file()
    ours = encoder.state_dict()
    torch.testing.assert_close(ours["model.stem.conv.weight"],
                               state["stem.conv.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(ours["model.stages_3.0.conv3_1x1.conv.weight"],
                               state["stages.3.0.conv3_1x1.conv.weight"], rtol=0, atol=0)
    # Once cached, the file is used without the hub.
    hub.files.clear()
    hub.calls.clear()
    again = segcore.get_encoder("timm-gernet_s", weights="imagenet")
    assert not [r for r in hub.requests if "gernet_s" in r]
    torch.testing.assert_close(again.state_dict()["model.stem.conv.weight"],
                               state["stem.conv.weight"], rtol=0, atol=0)


def test_a_file_the_hub_does_not_have(hub, hf_cache: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as caught:
        segcore.get_encoder("timm-regnety_002", weights="imagenet")
    message = str(caught.value)
    assert "'timm/regnety_002.pycls_in1k'" in message
    assert str(hf_cache / "models--timm--regnety_002.pycls_in1k") in message
    assert any("regnety_002.pycls_in1k" in r for r in hub.requests)
