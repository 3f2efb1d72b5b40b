"""Building models and encoders with wrong options, weights tags or missing extras."""

from __future__ import annotations

import importlib.util
from typing import Any

from catalogue import Case, Context

from segcore.errors import (
    EncoderCapabilityError,
    InvalidOptionError,
    MissingDependencyError,
    UnknownOptionError,
    UnknownWeightsError,
    WeightsFileError,
)

TINY = "segcore-testing-tiny"


def _build(architecture: str, **options: Any) -> Any:
    def call(context: Context) -> Any:
        import segcore
        from segcore import testing

        with testing.tiny_encoder_installed():
            options.setdefault("encoder", TINY)
            return segcore.build(architecture, **options)

    return call


def _encoder(name: str, **options: Any) -> Any:
    def call(context: Context) -> Any:
        import segcore

        return segcore.get_encoder(name, **options)

    return call


UNET = ("segcore_unet",)
DEEPLAB = ("segcore_deeplab",)
RESNET = ("segcore_resnet",)
TIMM = ("segcore_timm",)

CASES: list[Case] = [
    Case(id="build-encoder-name-keyword", item="models",
         description="segcore.build('unet', encoder_name='resnet18') (SMP's keyword)",
         call=lambda context: __import__("segcore").build("unet", encoder_name="resnet18"),
         error=InvalidOptionError,
         words=("takes the encoder as encoder=", "segcore.smp.create_model"), requires=UNET),
    Case(id="weights-tag-unknown-resnet34", item="models",
         description="resnet34 with encoder_weights='ssl' (it only has imagenet)",
         call=_encoder("resnet34", weights="ssl"), error=UnknownWeightsError,
         words=("has no weights 'ssl'", "'imagenet'", "encoder_weights=None"), requires=RESNET),
    Case(id="weights-tag-not-a-string", item="models",
         description="resnet18 with encoder_weights=3",
         call=_encoder("resnet18", weights=3), error=UnknownWeightsError,
         words=("encoder_weights must be None, a tag",), requires=RESNET),
    Case(id="weights-true-without-tags", item="models",
         description="the tiny test encoder (no weights) with encoder_weights=True",
         call=lambda context: _tiny_weights(True), error=UnknownWeightsError,
         words=("has no pretrained weights",)),
    Case(id="weights-file-missing", item="models",
         description="encoder_weights pointing at a file that does not exist",
         call=_encoder("resnet18", weights="/nonexistent/resnet18.safetensors"),
         error=WeightsFileError, words=("does not exist",), requires=RESNET),
    Case(id="timm-weights-unknown-tag", item="models",
         description="tu-resnet18 with encoder_weights='ssl'",
         call=_encoder("tu-resnet18", weights="ssl"), error=UnknownWeightsError,
         words=("'imagenet'",), requires=TIMM),
    Case(id="encoder-output-stride-4", item="models", description="get_encoder(output_stride=4)",
         call=_encoder("resnet18", output_stride=4), error=InvalidOptionError,
         words=("output_stride must be 8, 16 or 32",), requires=RESNET),
    Case(id="encoder-in-channels-zero", item="models", description="get_encoder(in_channels=0)",
         call=_encoder("resnet18", in_channels=0), error=InvalidOptionError,
         words=("in_channels must be a positive int",), requires=RESNET),
    Case(id="encoder-depth-six", item="models", description="get_encoder(depth=6)",
         call=_encoder("resnet18", depth=6), error=InvalidOptionError,
         words=("encoder_depth=6 is too large", "at most 5"), requires=RESNET),
    Case(id="encoder-extra-kwargs-refused", item="models",
         description="resnet18 (takes no extra arguments) with drop_rate=0.1",
         call=_encoder("resnet18", drop_rate=0.1), error=UnknownOptionError,
         words=("takes no extra arguments", "drop_rate"), requires=RESNET),
    Case(id="unet-decoder-channels-wrong-length", item="models",
         description="Unet depth 5 with 3 decoder channels",
         call=_build("unet", decoder_channels=(16, 8, 4)), error=InvalidOptionError,
         words=("decoder_channels has 3 values", "encoder_depth=5"), requires=UNET),
    Case(id="unet-decoder-typo", item="models", description="Unet with decoder_chanels=...",
         call=_build("unet", decoder_chanels=(16, 8, 4, 4, 4)), error=UnknownOptionError,
         words=("decoder_chanels", "did you mean", "decoder_channels"), requires=UNET),
    Case(id="unet-attention-unknown", item="models", description="decoder_attention_type='cbam'",
         call=_build("unet", decoder_attention_type="cbam"), error=InvalidOptionError,
         words=("decoder_attention_type", "'scse'"), requires=UNET),
    Case(id="unet-interpolation-unknown", item="models",
         description="decoder_interpolation='linear'",
         call=_build("unet", decoder_interpolation="linear"), error=InvalidOptionError,
         words=("decoder_interpolation", "'bilinear'"), requires=UNET),
    Case(id="unet-norm-unknown", item="models", description="decoder_use_norm='groupnorm'",
         call=_build("unet", decoder_use_norm="groupnorm"), error=InvalidOptionError,
         words=("decoder_use_norm",), requires=UNET),
    Case(id="deeplab-output-stride-32", item="models",
         description="DeepLabV3 with encoder_output_stride=32",
         call=_build("deeplabv3", encoder_output_stride=32), error=InvalidOptionError,
         words=("encoder_output_stride", "8", "16"), requires=DEEPLAB),
    Case(id="deeplab-atrous-rates-two", item="models",
         description="DeepLabV3Plus with two atrous rates",
         call=_build("deeplabv3plus", decoder_atrous_rates=(6, 12)), error=InvalidOptionError,
         words=("decoder_atrous_rates",), requires=DEEPLAB),
    Case(id="deeplab-encoder-cannot-dilate", item="models",
         description="DeepLabV3 with an encoder that cannot dilate",
         call=lambda context: _no_dilation_deeplab(), error=EncoderCapabilityError,
         words=("cannot be dilated",), requires=DEEPLAB),
    Case(id="aux-params-unknown-key", item="models", description="aux_params={'clases': 3}",
         call=_build("unet", aux_params={"clases": 3}), error=InvalidOptionError,
         words=("clases",), requires=UNET),
    Case(id="aux-params-bad-pooling", item="models", description="aux_params pooling='median'",
         call=_build("unet", aux_params={"classes": 2, "pooling": "median"}),
         error=InvalidOptionError, words=("pooling",), requires=UNET),
    Case(id="aux-params-dropout-above-one", item="models", description="aux dropout=1.5",
         call=_build("unet", aux_params={"classes": 2, "dropout": 1.5}),
         error=InvalidOptionError, words=("dropout",), requires=UNET),
]

if importlib.util.find_spec("inplace_abn") is None:
    CASES.append(Case(
        id="norm-inplace-without-inplace-abn", item="models",
        description="decoder_use_norm='inplace' when inplace_abn is not installed",
        call=_build("unet", decoder_use_norm="inplace"), error=MissingDependencyError,
        words=("inplace_abn", "pip install"), requires=UNET,
    ))


def _tiny_weights(weights: Any) -> Any:
    import segcore
    from segcore import testing

    with testing.tiny_encoder_installed():
        return segcore.get_encoder(TINY, weights=weights)


def _no_dilation_deeplab() -> Any:
    import attrs

    import segcore
    from segcore import testing

    rigid = attrs.evolve(testing.TINY_ENCODER_SPEC, name="rigid", supports_dilation=False)
    with testing.specs_installed(encoders=[rigid]):
        return segcore.build("deeplabv3", encoder="rigid")
