"""The helpers architecture plugins share: ``SegmentationModel.constructor_arguments`` and
the option validators and checks of ``segcore.options``."""

from __future__ import annotations

import attrs
import pytest
import torch
from torch import nn

from segcore import options as opt
from segcore import testing
from segcore.errors import InvalidOptionError, UnknownOptionError
from segcore.model import SegmentationModel
from segcore.nn import NormOption


@attrs.frozen
class NormNetOptions(opt.ArchitectureOptions):
    decoder_channels: tuple[int, ...] = attrs.field(
        default=(8, 8, 8), converter=opt.to_tuple, validator=opt.int_sequence()
    )
    decoder_use_norm: NormOption = attrs.field(
        default="batchnorm", converter=opt.plain_dict, validator=opt.norm_option
    )

    def check(self, encoder_depth: int) -> None:
        opt.check_channels_per_stage(self.decoder_channels, encoder_depth, (8, 8, 8, 8, 8),
                                     " (one per block)")
        opt.check_norm_buildable(self.decoder_use_norm, self.decoder_channels[-1])


class NormNet(SegmentationModel):
    """A documented constructor written with ``constructor_arguments``."""

    architecture = "normnet"
    options_class = NormNetOptions
    batchnorm_argument = "decoder_use_batchnorm"

    def __init__(self, encoder_name=testing.TINY_ENCODER, encoder_depth=3, encoder_weights=None,
                 decoder_use_batchnorm=True, decoder_channels=(8, 8, 8), in_channels=3,
                 classes=1, activation=None, aux_params=None, *, decoder_use_norm=None,
                 **kwargs):
        super().__init__(**self.constructor_arguments(locals()))

    def build_decoder(self, encoder_channels, options):
        return _Deepest(encoder_channels[-1], options.decoder_channels[-1])

    def segmentation_head_options(self, options):
        return {"in_channels": options.decoder_channels[-1], "kernel_size": 1,
                "upsampling": self.encoder.output_stride}


class _Deepest(nn.Module):
    """A 1x1 convolution on the deepest features."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(features[-1])


@pytest.fixture
def tiny(core_only):
    with testing.tiny_encoder_installed():
        yield


def test_constructor_arguments_pass_options_and_encoder_params(tiny):
    model = NormNet(classes=2, decoder_channels=[4, 4, 4], aux_params={"classes": 3})
    assert model.options.decoder_channels == (4, 4, 4)
    assert model.config["encoder_params"] == {}
    assert model.config["aux_params"] == {"classes": 3}
    assert model.config["classes"] == 2 and model.name == "normnet-" + testing.TINY_ENCODER
    assert "decoder_use_batchnorm" not in model.config


def test_batchnorm_argument_is_used_unless_decoder_use_norm_is_given(tiny):
    assert NormNet(decoder_use_batchnorm=False).options.decoder_use_norm is False
    assert NormNet().options.decoder_use_norm is True
    chosen = NormNet(decoder_use_batchnorm=False, decoder_use_norm="layernorm")
    assert chosen.options.decoder_use_norm == "layernorm"
    with pytest.raises(InvalidOptionError, match="decoder_use_batchnorm must be True, False or"):
        NormNet(decoder_use_batchnorm="yes")


def test_misspelt_decoder_argument_is_refused_with_a_suggestion(tiny):
    with pytest.raises(UnknownOptionError, match=r"'decoder_chanels' for normnet\. Did you mean "
                       r"'decoder_channels'.*Valid decoder options: decoder_use_batchnorm, "
                       r"decoder_channels, decoder_use_norm\."):
        NormNet(decoder_chanels=(8, 8, 8))


def test_no_prefixes_let_decoder_names_reach_the_encoder(tiny):
    class Lenient(NormNet):
        decoder_argument_prefixes = ()

    with pytest.raises(UnknownOptionError, match="takes no extra arguments"):
        Lenient(decoder_chanels=(8, 8, 8))


def test_options_checks_name_the_fix(tiny):
    with pytest.raises(InvalidOptionError, match=r"decoder_channels has 2 values but "
                       r"encoder_depth=3 needs 3 \(one per block\): use \(8, 8, 8\)$"):
        NormNet(decoder_channels=(8, 8))
    with pytest.raises(InvalidOptionError, match="keep these channels"):
        NormNet(decoder_channels=(8, 8, 8, 8))
    with pytest.raises(InvalidOptionError, match="cannot build a normalisation layer"):
        NormNet(decoder_use_norm={"type": "batchnorm", "no_such_keyword": 1})


def test_plain_dict_copies_mappings_only():
    norm = {"type": "layernorm"}
    copied = NormNetOptions(decoder_use_norm=norm).decoder_use_norm
    assert copied == norm and copied is not norm and type(copied) is dict
    assert opt.plain_dict("batchnorm") == "batchnorm"


@attrs.frozen
class StrideOptions(opt.ArchitectureOptions):
    stride: int = attrs.field(default=16, validator=opt.int_one_of(8, 16, explanation="Why."))
    level: int = attrs.field(default=1, validator=opt.int_one_of(1, 2, 3))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("stride", 32, "stride must be 8 or 16, got 32. Why."),
    ("stride", True, "stride must be 8 or 16, got True. Why."),
    ("level", "2", "level must be 1, 2 or 3, got '2'."),
])
def test_int_one_of_names_the_choices(field, value, message):
    with pytest.raises(InvalidOptionError) as caught:
        StrideOptions(**{field: value})
    assert str(caught.value) == message
    assert StrideOptions(stride=8, level=3).stride == 8


def test_smp_hub_weights_is_a_pinned_smp_hub_source() -> None:
    from segcore.specs import (
        HALF_PREPROCESSING,
        IMAGENET_PREPROCESSING,
        Preprocessing,
        smp_hub_weights,
    )

    revision = "0" * 40
    source = smp_hub_weights("resnet18", "imagenet", revision, "ImageNet-1k (torchvision)")
    assert source.url == (f"https://huggingface.co/smp-hub/resnet18.imagenet/resolve/"
                          f"{revision}/model.safetensors")
    assert source.cache_filename("resnet18", "imagenet") == "resnet18.imagenet.safetensors"
    assert source.preprocessing == IMAGENET_PREPROCESSING == Preprocessing(
        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_space="RGB",
        input_range=(0.0, 1.0))
    assert source.description == "ImageNet-1k (torchvision)" and source.sha256 is None
    other = smp_hub_weights("resnet50", "sswl", revision, "d", repository="resnet50.swsl",
                            preprocessing=HALF_PREPROCESSING)
    assert "/smp-hub/resnet50.swsl/resolve/" in other.url
    assert other.cache_filename("resnet50", "sswl") == "resnet50.sswl.safetensors"
    assert other.preprocessing.mean == (0.5, 0.5, 0.5) == other.preprocessing.std
