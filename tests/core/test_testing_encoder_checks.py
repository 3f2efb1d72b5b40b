"""``segcore.testing.check_encoder`` on an encoder whose spec declares no dilation: the
refusal of ``output_stride`` 8 and 16 is part of the contract it checks."""

from __future__ import annotations

import attrs
import pytest

from segcore import factory, testing

NO_DILATION = attrs.evolve(testing.TINY_ENCODER_SPEC, name="tiny-no-dilation",
                           supports_dilation=False)


def test_check_encoder_passes_when_the_output_strides_are_refused() -> None:
    with testing.specs_installed(encoders=[NO_DILATION]):
        testing.check_encoder("tiny-no-dilation", depths=(5,), in_channels=(3,), size=32,
                              compile=False)


def test_check_encoder_fails_when_an_output_stride_is_accepted(monkeypatch) -> None:
    original = factory.get_encoder

    def accepting(name: str, *args, output_stride: int = 32, **options):
        """``get_encoder`` that ignores ``output_stride`` (so never refuses it)."""
        return original(name, *args, **options)

    monkeypatch.setattr(factory, "get_encoder", accepting)
    with testing.specs_installed(encoders=[NO_DILATION]), \
            pytest.raises(AssertionError, match=r"output_stride=8: no EncoderCapabilityError"):
        testing.check_encoder("tiny-no-dilation", depths=(5,), in_channels=(3,), size=32,
                              compile=False)


def test_documented_encoders_filters_the_catalogue_by_prefix():
    every = testing.documented_encoders()
    selected = testing.documented_encoders("timm-skresne")
    assert sorted(selected) == ["timm-skresnet18", "timm-skresnet34", "timm-skresnext50_32x4d"]
    assert all(every[name] == row for name, row in selected.items())
    assert len(every) > 100 and "resnet34" in every
    family, tags, millions = every["resnet34"]
    assert family and "imagenet" in tags and 20 < millions < 23
