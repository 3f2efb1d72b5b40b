"""Options of tu- encoders: timm kwargs, collisions, delegated pretrained weights, preprocessing."""

from __future__ import annotations

from typing import Any

import pytest
import timm
import torch
from segcore_timm import build_timm_encoder
from timm.layers import DropPath

import segcore
from segcore.errors import (
    InvalidOptionError,
    UnknownOptionError,
    UnknownWeightsError,
    WeightsNotFoundError,
)


def test_extra_kwargs_go_to_timm() -> None:
    encoder = segcore.get_encoder("tu-resnet18", drop_path_rate=0.1)
    rates = [m.drop_prob for m in encoder.modules() if isinstance(m, DropPath)]
    assert rates, "drop_path_rate did not reach timm"
    assert max(rates) == pytest.approx(0.1)
    assert not any(isinstance(m, DropPath) for m in segcore.get_encoder("tu-resnet18").modules())


@pytest.mark.parametrize("option", ["in_chans", "features_only", "out_indices", "pretrained"])
def test_kwargs_that_collide_with_ours_are_refused(option: str) -> None:
    with pytest.raises(InvalidOptionError, match=f"'{option}'.*sets them itself"):
        segcore.get_encoder("tu-resnet18", **{option: 1})


def test_unknown_timm_option_names_the_option() -> None:
    with pytest.raises(UnknownOptionError, match="'no_such_option'"):
        segcore.get_encoder("tu-resnet18", no_such_option=1)


@pytest.fixture
def captured_create_model(monkeypatch) -> list[dict[str, Any]]:
    """Record the kwargs of timm.create_model and never download (pretrained becomes False)."""
    calls: list[dict[str, Any]] = []
    original = timm.create_model

    def fake_create_model(model_name: str, pretrained: bool = False, **kwargs: Any):
        calls.append({"model_name": model_name, "pretrained": pretrained, **kwargs})
        return original(model_name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", fake_create_model)
    return calls


@pytest.mark.parametrize("weights", ["imagenet", True])
def test_imagenet_weights_are_delegated_to_timm(captured_create_model, weights) -> None:
    encoder = segcore.get_encoder("tu-resnet18", in_channels=1, weights=weights)
    built = [c for c in captured_create_model if c.get("out_indices") is not None]
    assert len(built) == 1
    assert built[0]["pretrained"] is True
    assert built[0]["model_name"] == "resnet18"
    assert built[0]["in_chans"] == 1  # timm adapts the pretrained first convolution itself
    assert encoder.in_channels == 1


def test_no_weights_means_no_pretrained(captured_create_model) -> None:
    segcore.get_encoder("tu-resnet18", weights=None)
    built = [c for c in captured_create_model if c.get("out_indices") is not None]
    assert [c["pretrained"] for c in built] == [False]


def test_architecture_default_weights_are_delegated(captured_create_model) -> None:
    # SMP's classes default to encoder_weights="imagenet": that means timm's own weights.
    build_timm_encoder("tu-test_convnext", weights="imagenet")
    assert captured_create_model[-1]["pretrained"] is True


def test_weights_of_a_model_timm_has_none_for() -> None:
    with pytest.raises(UnknownWeightsError, match=r"no pretrained weights|no weights"):
        segcore.get_encoder("tu-convnext_atto_rms", weights="imagenet")


def test_other_tags_are_refused_by_the_factory() -> None:
    with pytest.raises(UnknownWeightsError, match=r"tu-<model>\.<tag>"):
        build_timm_encoder("tu-resnet18", weights="ssl")


def test_preprocessing_params_are_timms() -> None:
    config = timm.models.get_pretrained_cfg("resnet18")
    params = segcore.get_preprocessing_params("tu-resnet18")
    assert params == {"input_space": "RGB", "input_range": [0.0, 1.0],
                      "mean": list(config.mean), "std": list(config.std)}
    assert params["mean"] == pytest.approx([0.485, 0.456, 0.406])
    # Models trained with other statistics report theirs.
    assert segcore.get_preprocessing_params("tu-test_vit")["mean"] == pytest.approx([0.5] * 3)
    fn = segcore.get_preprocessing_fn("tu-resnet18")
    image = torch.full((2, 2, 3), 0.485)
    assert torch.allclose(fn(image)[..., 0], torch.zeros(2, 2), atol=1e-6)


def test_preprocessing_params_of_a_model_without_weights() -> None:
    with pytest.raises(UnknownWeightsError):
        segcore.get_preprocessing_params("tu-convnext_atto_rms")


def test_failed_download_says_what_to_do(monkeypatch) -> None:
    original = timm.create_model

    def offline_create_model(model_name: str, pretrained: bool = False, **kwargs: Any):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return original(model_name, **kwargs)  # the layout probe

    monkeypatch.setattr(timm, "create_model", offline_create_model)
    with pytest.raises(WeightsNotFoundError, match=r"pretrained weights.*encoder_weights=None"):
        build_timm_encoder("tu-resnet18", weights="imagenet")


def test_weights_file_loads_then_first_conv_is_adapted(tmp_path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = segcore.get_encoder("tu-test_convnext")
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))

    loaded = segcore.get_encoder("tu-test_convnext", weights=str(path)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(loaded(x)[2:], source.eval()(x)[2:]):
            torch.testing.assert_close(a, b)

    gray = segcore.get_encoder("tu-test_convnext", weights=str(path), in_channels=1)
    assert gray.in_channels == 1
    torch.testing.assert_close(gray.model.stem_0.weight,
                               source.model.stem_0.weight.sum(1, keepdim=True))
