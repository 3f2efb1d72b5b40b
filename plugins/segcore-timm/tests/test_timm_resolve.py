"""Resolving tu- names: specs, unknown names, capability errors, lazy timm import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import timm
from segcore_timm import plugin
from torch import nn

import segcore
from segcore.errors import EncoderCapabilityError, UnknownNameError
from segcore.factory import get_encoder_spec


def test_hook_ignores_other_names() -> None:
    assert plugin.segcore_resolve_encoder(name="resnet18") is None
    assert plugin.segcore_resolve_encoder(name="timm-resnest14d") is None


def test_spec_of_a_traditional_model() -> None:
    spec = plugin.segcore_resolve_encoder(name="tu-resnet18")
    assert spec.name == "tu-resnet18"
    assert spec.family == "timm"
    assert spec.factory == "segcore_timm.encoder:build_timm_encoder"
    assert spec.accepts_kwargs and spec.supports_compile and spec.supports_dilation
    assert spec.out_channels == (3, 64, 64, 128, 256, 512)
    assert list(spec.weights) == ["imagenet"]
    assert spec.weights["imagenet"].delegate
    assert get_encoder_spec("tu-resnet18") == spec


def test_spec_of_transformer_style_and_undilatable_models() -> None:
    spec = get_encoder_spec("tu-test_mambaout")
    assert spec.out_channels == (3, 0, 16, 32, 48, 64)
    assert not spec.supports_dilation  # MambaOut takes no output_stride
    assert get_encoder_spec("tu-test_convnext").supports_dilation  # ConvNeXt does


def test_a_pretrained_tag_in_the_name_is_kept() -> None:
    spec = get_encoder_spec("tu-resnet18.tv_in1k")
    assert spec.name == "tu-resnet18.tv_in1k"
    assert "tv_in1k" in spec.weights["imagenet"].description


def test_model_without_pretrained_weights_has_no_tags() -> None:
    assert not timm.models.is_model_pretrained("convnext_atto_rms")
    assert dict(get_encoder_spec("tu-convnext_atto_rms").weights) == {}


def test_unknown_model_suggests_close_timm_names() -> None:
    with pytest.raises(UnknownNameError) as caught:
        plugin.segcore_resolve_encoder(name="tu-resnt18")
    message = str(caught.value)
    assert "'resnt18'" in message and "'tu-resnet18'" in message
    # Through the registry the user also gets an UnknownNameError naming the close match.
    with pytest.raises(UnknownNameError, match="tu-resnet18"):
        segcore.get_encoder("tu-resnt18")


def test_unknown_pretrained_tag_lists_the_tags() -> None:
    with pytest.raises(UnknownNameError, match=r"no pretrained tag 'bogus'.*tu-resnet18\.a1_in1k"):
        plugin.segcore_resolve_encoder(name="tu-resnet18.bogus")


def test_empty_timm_name_is_unknown() -> None:
    with pytest.raises(UnknownNameError):
        plugin.segcore_resolve_encoder(name="tu-")


def test_model_that_cannot_take_features_only_options() -> None:
    # Real timm 1.0 model: inception_v3 with its auxiliary classifier has no features_only mode.
    with pytest.raises(EncoderCapabilityError, match=r"features_only.*aux_logits.*tu-resnet34"):
        segcore.get_encoder("tu-inception_v3", aux_logits=True)


class _PlainNet(nn.Module):
    """A classifier without feature_info: timm cannot wrap it with features_only."""

    def __init__(self, in_chans: int = 3, num_classes: int = 10, **_: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8, num_classes)


@pytest.fixture(scope="module")
def plain_net_registered() -> str:
    name = "segcore_test_plain_net"
    if not timm.is_model(name):
        from timm.models import build_model_with_cfg, register_model

        def segcore_test_plain_net(pretrained: bool = False, **kwargs: object) -> nn.Module:
            return build_model_with_cfg(_PlainNet, name, pretrained, **kwargs)

        register_model(segcore_test_plain_net)
    return name


@pytest.mark.filterwarnings("ignore:No pretrained configuration")
def test_model_without_features_only_resolves_but_refuses_to_build(plain_net_registered) -> None:
    spec = get_encoder_spec("tu-" + plain_net_registered)
    assert spec.out_channels is None and not spec.supports_dilation
    with pytest.raises(EncoderCapabilityError, match=r"features_only.*feature_info.*tu-resnet34"):
        segcore.get_encoder("tu-" + plain_net_registered)


def test_unsupported_reduction_pattern() -> None:
    # A plain ViT keeps reduction 16 at every level.
    assert get_encoder_spec("tu-test_vit").out_channels is None
    with pytest.raises(EncoderCapabilityError, match=r"reductions \[16, 16, 16\]"):
        segcore.get_encoder("tu-test_vit")


def test_depth_beyond_the_model() -> None:
    # NesT has three levels (reductions 4, 8, 16): depth 4 at most. Checked before building.
    with pytest.raises(EncoderCapabilityError, match="encoder_depth <= 4"):
        segcore.get_encoder("tu-nest_tiny", depth=5)


def test_dilation_of_a_model_that_cannot_be_dilated() -> None:
    with pytest.raises(EncoderCapabilityError, match="output_stride"):
        segcore.get_encoder("tu-test_mambaout", output_stride=16)
    from segcore_timm import TimmUniversalEncoder

    with pytest.raises(EncoderCapabilityError, match="cannot be dilated"):
        TimmUniversalEncoder("test_mambaout", output_stride=8)


def test_listing_encoders_does_not_import_timm() -> None:
    code = textwrap.dedent(
        """
        import sys
        import segcore
        segcore.list_encoders()
        segcore.list_encoders("tu-*")
        import segcore_timm.plugin
        assert "segcore_timm.plugin" in sys.modules
        print("timm" in sys.modules, "segcore_timm.layout" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.split() == ["False", "False"]
