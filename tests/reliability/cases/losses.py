"""Catalogue rows: losses built by name or class, with bad options and bad inputs.

Item 7.10 is ``build_loss`` (typos, weights, empty mappings); 7.11 the inputs a loss cannot
take. Every row needs ``segcore_losses``; it is imported inside the calls, so that this module
loads without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from catalogue import Case, Context

from segcore.errors import (
    InvalidOptionError,
    InvalidTargetError,
    UnknownNameError,
    UnknownOptionError,
)

REQUIRES = ("segcore_losses",)


def _build(name: Any, **options: Any) -> Callable[[Context], Any]:
    """A call that builds a loss through ``segcore.build_loss``."""

    def call(context: Context) -> Any:
        import segcore

        return segcore.build_loss(name, **options)

    return call


def _make(class_name: str, *args: Any, **options: Any) -> Callable[[Context], Any]:
    """A call that constructs ``segcore_losses.<class_name>(*args, **options)``."""

    def call(context: Context) -> Any:
        import segcore_losses

        return getattr(segcore_losses, class_name)(*args, **options)

    return call


def _forward(
    class_name: str,
    args: tuple[Any, ...],
    output: Callable[[], Any],
    target: Callable[[], Any],
    **options: Any,
) -> Callable[[Context], Any]:
    """A call that builds a loss and applies it to ``output()`` and ``target()``."""

    def call(context: Context) -> Any:
        import segcore_losses

        loss = getattr(segcore_losses, class_name)(*args, **options)
        return loss(output(), target())

    return call


def _randn(*shape: int) -> Callable[[], Any]:
    def make() -> Any:
        import torch

        return torch.randn(*shape)

    return make


def _labels(*shape: int, high: int = 3, value: int | None = None, dtype: str = "long",
            device: str = "cpu") -> Callable[[], Any]:
    """Random labels in [0, high) (or all ``value``), of the given dtype and device."""

    def make() -> Any:
        import torch

        labels = torch.randint(0, high, shape) if value is None else torch.full(shape, value)
        return labels.to(dtype=getattr(torch, dtype), device=device)

    return make


def _nan_target(*shape: int) -> Callable[[], Any]:
    """A float 0/1 target with one NaN."""

    def make() -> Any:
        import torch

        target = torch.zeros(shape)
        target.view(-1)[0] = float("nan")
        return target

    return make


def _literal(value: Any) -> Callable[[], Any]:
    return lambda: value


def row(id: str, description: str, call: Callable[[Context], Any], error: type[BaseException],
        words: tuple[str, ...], item: str = "7.11") -> Case:
    """A row; its id says "loss" (``-k loss`` selects the rows of this module)."""
    return Case(id=id if "loss" in id else f"loss-{id}", item=item, description=description,
                call=call, error=error, words=words, requires=REQUIRES)


CASES: list[Case] = [
    # -- build_loss (7.10) ----------------------------------------------------------------
    row("build-loss-sum-misspelled-option", "weighted sum with smoth=1.0",
        _build({"dice": 1.0}, mode="binary", smoth=1.0), UnknownOptionError,
        ("'smoth'", "did you mean 'smooth'", "valid options"), item="7.10"),
    row("build-loss-misspelled-option", "single loss with smoth=1.0",
        _build("dice", mode="binary", smoth=1.0), UnknownOptionError,
        ("'smoth'", "did you mean 'smooth'", "valid options"), item="7.10"),
    row("build-loss-sum-option-no-term-takes", "per_image for dice + focal",
        _build({"dice": 1.0, "focal": 1.0}, mode="binary", per_image=True), UnknownOptionError,
        ("no term", "'per_image'", "valid options"), item="7.10"),
    row("build-loss-nan-weight", "weight NaN", _build({"dice": float("nan")}, mode="binary"),
        InvalidOptionError, ("'dice'", "finite number >= 0", "nan"), item="7.10"),
    row("build-loss-inf-weight", "weight inf", _build({"dice": float("inf")}, mode="binary"),
        InvalidOptionError, ("'dice'", "finite number >= 0", "inf"), item="7.10"),
    row("build-loss-negative-weight", "weight -1",
        _build({"dice": 1.0, "focal": -1.0}, mode="binary"), InvalidOptionError,
        ("'focal'", "negative weight", "use 0"), item="7.10"),
    row("build-loss-bool-weight", "weight True", _build({"dice": True}, mode="binary"),
        InvalidOptionError, ("'dice'", "finite number", "true"), item="7.10"),
    row("build-loss-string-weight", "weight '0.5'", _build({"dice": "0.5"}, mode="binary"),
        InvalidOptionError, ("'dice'", "finite number", "'0.5'"), item="7.10"),
    row("build-loss-empty-mapping", "build_loss({})", _build({}, mode="binary"),
        InvalidOptionError, ("empty mapping", "{'dice': 1.0", "installed losses"), item="7.10"),
    row("build-loss-unknown-name", "build_loss('dise')", _build("dise", mode="binary"),
        UnknownNameError, ("'dise'", "did you mean 'dice'"), item="7.10"),
    row("build-loss-sum-unknown-name", "a misspelled term of a sum",
        _build({"dice": 1.0, "focall": 1.0}, mode="binary"), UnknownNameError,
        ("'focall'", "'focal'"), item="7.10"),
    row("build-loss-unknown-mode", "mode='multi-class'",
        _build("dice", mode="multi-class"), InvalidOptionError,
        ("'multi-class'", "valid modes", "did you mean 'multiclass'"), item="7.10"),
    row("build-loss-list-of-names", "a list instead of a mapping",
        _build(["dice", "focal"], mode="binary"), InvalidOptionError,
        ("loss name", "{name: weight} mapping"), item="7.10"),
    row("build-loss-sum-reduction-none", "per-element terms in a sum",
        _build({"focal": 1.0, "dice": 1.0}, mode="binary", reduction="none"),
        InvalidOptionError, ("reduction='none'", "'mean' or 'sum'"), item="7.10"),
    row("build-loss-sum-mcc-multiclass", "mcc in a multiclass sum",
        _build({"dice": 1.0, "mcc": 1.0}, mode="multiclass"), InvalidOptionError,
        ("mccloss", "only 'binary' mode"), item="7.10"),
    row("build-loss-bad-option-value", "smooth=-1 through build_loss",
        _build("dice", mode="binary", smooth=-1.0), InvalidOptionError,
        ("diceloss", "smooth must lie in [0, inf]"), item="7.10"),

    # -- options of the loss classes --------------------------------------------------------
    row("dice-negative-smooth", "DiceLoss(smooth=-1)", _make("DiceLoss", "binary", smooth=-1.0),
        InvalidOptionError, ("smooth must lie in [0, inf]", "-1.0")),
    row("dice-nan-smooth", "DiceLoss(smooth=nan)",
        _make("DiceLoss", "binary", smooth=float("nan")), InvalidOptionError,
        ("smooth must be a finite number",)),
    row("dice-string-smooth", "DiceLoss(smooth='1')", _make("DiceLoss", "binary", smooth="1"),
        InvalidOptionError, ("smooth must be a finite number", "'1'")),
    row("jaccard-negative-eps", "JaccardLoss(eps=-1e-7)",
        _make("JaccardLoss", "binary", eps=-1e-7), InvalidOptionError, ("eps must lie",)),
    row("tversky-negative-alpha", "TverskyLoss(alpha=-0.3)",
        _make("TverskyLoss", "binary", alpha=-0.3), InvalidOptionError,
        ("alpha must lie in [0, inf]",)),
    row("tversky-inf-beta", "TverskyLoss(beta=inf)",
        _make("TverskyLoss", "binary", beta=float("inf")), InvalidOptionError,
        ("beta must be a finite number",)),
    row("tversky-zero-gamma", "TverskyLoss(gamma=0)", _make("TverskyLoss", "binary", gamma=0.0),
        InvalidOptionError, ("gamma must lie in (0, inf]",)),
    row("focal-alpha-above-one", "FocalLoss(alpha=1.5)", _make("FocalLoss", "binary", alpha=1.5),
        InvalidOptionError, ("alpha must lie in [0, 1]", "1.5")),
    row("focal-negative-gamma", "FocalLoss(gamma=-2)", _make("FocalLoss", "binary", gamma=-2.0),
        InvalidOptionError, ("gamma must lie in [0, inf]",)),
    row("focal-zero-reduced-threshold", "FocalLoss(reduced_threshold=0)",
        _make("FocalLoss", "binary", reduced_threshold=0.0), InvalidOptionError,
        ("reduced_threshold must lie in (0, 1]",)),
    row("focal-eps-too-large", "FocalLoss(eps=0.6)", _make("FocalLoss", "binary", eps=0.6),
        InvalidOptionError, ("eps must lie in (0, 0.5]",)),
    row("focal-unknown-reduction", "FocalLoss(reduction='batchwise_mean')",
        _make("FocalLoss", "binary", reduction="batchwise_mean"), InvalidOptionError,
        ("unknown reduction", "'mean', 'sum', 'none'")),
    row("focal-misspelled-reduction", "FocalLoss(reduction='meen')",
        _make("FocalLoss", "binary", reduction="meen"), InvalidOptionError,
        ("did you mean 'mean'",)),
    row("focal-normalized-string", "FocalLoss(normalized='yes')",
        _make("FocalLoss", "binary", normalized="yes"), InvalidOptionError,
        ("normalized must be true or false",)),
    row("dice-class-weights-binary", "class_weights in binary mode",
        _make("DiceLoss", "binary", class_weights=[1.0]), InvalidOptionError,
        ("not supported in binary mode", "multiclass")),
    row("dice-class-weights-wrong-length", "2 class weights for 3 classes",
        _forward("DiceLoss", ("multiclass",), _randn(2, 3, 4, 4), _labels(2, 4, 4),
                 class_weights=[1.0, 2.0]),
        InvalidOptionError, ("class_weights has 2 values", "3 classes")),
    row("focal-class-weights-negative", "a negative class weight",
        _make("FocalLoss", "multilabel", class_weights=[1.0, -1.0]), InvalidOptionError,
        ("finite and non-negative",)),
    row("tversky-class-weights-all-zero", "class weights all 0",
        _make("TverskyLoss", "multiclass", class_weights=[0.0, 0.0]), InvalidOptionError,
        ("must not all be zero",)),
    row("jaccard-class-weights-strings", "class weights of strings",
        _make("JaccardLoss", "multiclass", class_weights=["a", "b"]), InvalidOptionError,
        ("class_weights must be a sequence", "one per class")),
    row("jaccard-class-weights-matrix", "a 2-D class weight table",
        _make("JaccardLoss", "multiclass", class_weights=[[1.0, 2.0]]), InvalidOptionError,
        ("one weight per class", "(1, 2)")),
    row("dice-classes-in-binary", "classes=[0] in binary mode",
        _make("DiceLoss", "binary", classes=[0]), InvalidOptionError,
        ("classes cannot be chosen in binary mode",)),
    row("dice-classes-out-of-range", "classes=[0, 5] with 3 classes",
        _forward("DiceLoss", ("multiclass",), _randn(1, 3, 2, 2), _labels(1, 2, 2),
                 classes=[0, 5]),
        InvalidOptionError, ("class 5", "only 3 classes", "0..2")),
    row("dice-classes-negative", "classes=[-1]", _make("DiceLoss", "multiclass", classes=[-1]),
        InvalidOptionError, ("non-negative int class indices",)),
    row("dice-ignore-index-string", "ignore_index='255'",
        _make("DiceLoss", "binary", ignore_index="255"), InvalidOptionError,
        ("ignore_index must be an int", "'255'")),
    row("lovasz-ignore-index-nan", "ignore_index=nan",
        _make("LovaszLoss", "binary", ignore_index=float("nan")), InvalidOptionError,
        ("ignore_index must be an int",)),
    row("lovasz-per-image-string", "per_image='False'",
        _make("LovaszLoss", "binary", per_image="False"), InvalidOptionError,
        ("per_image must be true or false", "'false'")),
    row("dice-from-logits-string", "from_logits='no'",
        _make("DiceLoss", "binary", from_logits="no"), InvalidOptionError,
        ("from_logits must be true or false",)),
    row("lovasz-unknown-mode", "LovaszLoss('multi')", _make("LovaszLoss", "multi"),
        InvalidOptionError, ("unknown mode 'multi'", "'binary', 'multiclass', 'multilabel'")),
    row("focal-mode-none", "FocalLoss(None)", _make("FocalLoss", None), InvalidOptionError,
        ("unknown mode none", "segcore.binary_mode")),
    row("mcc-multiclass-mode", "MCCLoss(mode='multiclass')",
        _make("MCCLoss", mode="multiclass"), InvalidOptionError, ("only 'binary' mode",)),
    row("mcc-negative-eps", "MCCLoss(eps=-1)", _make("MCCLoss", -1.0), InvalidOptionError,
        ("eps must lie",)),
    row("soft-bce-unknown-reduction", "SoftBCEWithLogitsLoss(reduction='avg')",
        _make("SoftBCEWithLogitsLoss", reduction="avg"), InvalidOptionError,
        ("unknown reduction 'avg'", "valid reductions")),
    row("soft-bce-smooth-factor-above-one", "smooth_factor=1.5",
        _make("SoftBCEWithLogitsLoss", smooth_factor=1.5), InvalidOptionError,
        ("smooth_factor must lie in [0, 1]",)),
    row("soft-bce-weight-strings", "weight=['a']",
        _make("SoftBCEWithLogitsLoss", weight=["a"]), InvalidOptionError,
        ("weight must be a tensor",)),
    row("soft-ce-dim-zero", "SoftCrossEntropyLoss(dim=0)",
        _make("SoftCrossEntropyLoss", dim=0), InvalidOptionError, ("dim must be", "not 0")),
    row("soft-ce-negative-smooth-factor", "smooth_factor=-0.1",
        _make("SoftCrossEntropyLoss", smooth_factor=-0.1), InvalidOptionError,
        ("smooth_factor must lie in [0, 1]",)),
    row("soft-ce-ignore-index-float-string", "ignore_index=[255]",
        _make("SoftCrossEntropyLoss", ignore_index=[255]), InvalidOptionError,
        ("ignore_index must be an int",)),

    # -- inputs of the losses ---------------------------------------------------------------
    *[
        row(f"{short}-multiclass-float-target", f"{name}: float class indices",
            _forward(name, ("multiclass",), _randn(2, 3, 4, 4), _labels(2, 4, 4, dtype="float")),
            InvalidTargetError, ("long tensor (n, h, w) of class indices", "target.long()"))
        for short, name in (("dice", "DiceLoss"), ("jaccard", "JaccardLoss"),
                            ("tversky", "TverskyLoss"), ("focal", "FocalLoss"),
                            ("lovasz", "LovaszLoss"))
    ],
    *[
        row(f"{short}-multiclass-one-hot-target", f"{name}: one-hot (N, C, H, W) target",
            _forward(name, ("multiclass",), _randn(2, 3, 4, 4), _labels(2, 3, 4, 4, high=2)),
            InvalidTargetError, ("argmax(dim=1)", "multilabel"))
        for short, name in (("dice", "DiceLoss"), ("jaccard", "JaccardLoss"),
                            ("tversky", "TverskyLoss"), ("focal", "FocalLoss"),
                            ("lovasz", "LovaszLoss"))
    ],
    *[
        row(f"{short}-multiclass-target-out-of-range", f"{name}: class 3 of 3",
            _forward(name, ("multiclass",), _randn(2, 3, 4, 4), _labels(2, 4, 4, value=3)),
            InvalidTargetError, ("[0, 3)", "found [3]"))
        for short, name in (("dice", "DiceLoss"), ("jaccard", "JaccardLoss"),
                            ("tversky", "TverskyLoss"), ("focal", "FocalLoss"),
                            ("lovasz", "LovaszLoss"))
    ],
    *[
        row(f"{short}-binary-three-channels", f"{name}: binary output with 3 channels",
            _forward(name, ("binary",), _randn(2, 3, 4, 4), _labels(2, 4, 4, high=2)),
            InvalidTargetError, ("one channel (n, 1, h, w)", "c=3", "mode='multilabel'"))
        for short, name in (("dice", "DiceLoss"), ("jaccard", "JaccardLoss"),
                            ("tversky", "TverskyLoss"), ("focal", "FocalLoss"),
                            ("lovasz", "LovaszLoss"))
    ],
    *[
        row(f"{short}-batch-mismatch", f"{name}: 2 outputs, 3 targets",
            _forward(name, ("binary",), _randn(2, 1, 4, 4), _labels(3, 4, 4, high=2)),
            InvalidTargetError, ("do not match", "(n, h, w) = (2, 4, 4)"))
        for short, name in (("dice", "DiceLoss"), ("jaccard", "JaccardLoss"),
                            ("tversky", "TverskyLoss"), ("focal", "FocalLoss"),
                            ("lovasz", "LovaszLoss"))
    ],
    row("dice-multilabel-target-shape", "multilabel target without channels",
        _forward("DiceLoss", ("multilabel",), _randn(2, 3, 4, 4), _labels(2, 4, 4, high=2)),
        InvalidTargetError, ("(n, c, h, w) = (2, 3, 4, 4)",)),
    row("focal-binary-target-255", "255 in a binary target without ignore_index",
        _forward("FocalLoss", ("binary",), _randn(2, 1, 4, 4), _labels(2, 4, 4, value=255)),
        InvalidTargetError, ("0/1", "found [255]", "ignore_index=255")),
    row("dice-binary-nan-target", "NaN in a binary target",
        _forward("DiceLoss", ("binary",), _randn(1, 1, 2, 2), _nan_target(1, 2, 2)),
        InvalidTargetError, ("0/1", "nan")),
    row("dice-integer-output", "an integer output",
        _forward("DiceLoss", ("binary",), _labels(2, 1, 4, 4, high=2), _labels(2, 4, 4, high=2)),
        InvalidTargetError, ("floating-point", "torch.int64")),
    row("jaccard-list-target", "a Python list as target",
        _forward("JaccardLoss", ("binary",), _randn(1, 1, 2), _literal([[0, 1]])),
        InvalidTargetError, ("must be torch tensors", "list")),
    row("lovasz-one-dimensional-output", "an output of shape (4,)",
        _forward("LovaszLoss", ("binary",), _randn(4), _labels(4, high=2)),
        InvalidTargetError, ("(n, c, h, w)", "(4)")),
    row("tversky-no-class-channel", "an output with 0 channels",
        _forward("TverskyLoss", ("multilabel",), _randn(2, 0, 4, 4), _randn(2, 0, 4, 4)),
        InvalidTargetError, ("no class channel", "c >= 1")),
    row("focal-target-other-device", "target on another device",
        _forward("FocalLoss", ("multiclass",), _randn(2, 3, 4, 4), _labels(2, 4, 4,
                 device="meta")),
        InvalidTargetError, ("different devices", "target.to(output.device)")),
    row("soft-ce-float-target", "SoftCrossEntropyLoss: float target",
        _forward("SoftCrossEntropyLoss", (), _randn(2, 3, 4, 4), _labels(2, 4, 4, dtype="float")),
        InvalidTargetError, ("long tensor", "target.long()")),
    row("soft-ce-target-out-of-range", "SoftCrossEntropyLoss: class 3 of 3",
        _forward("SoftCrossEntropyLoss", (), _randn(2, 3, 4, 4), _labels(2, 4, 4, value=3)),
        InvalidTargetError, ("[0, 3)", "found [3]")),
    row("soft-ce-dim-out-of-range", "SoftCrossEntropyLoss(dim=4) on a 4-D output",
        _forward("SoftCrossEntropyLoss", (), _randn(2, 3, 4, 4), _labels(2, 4, 4), dim=4),
        InvalidTargetError, ("dim=4", "valid values are 1..3")),
    row("soft-bce-shape-mismatch", "SoftBCEWithLogitsLoss: (2, 3, 4, 4) vs (2, 4, 4)",
        _forward("SoftBCEWithLogitsLoss", (), _randn(2, 3, 4, 4), _labels(2, 4, 4, high=2)),
        InvalidTargetError, ("do not match", "output's shape")),
    row("soft-bce-target-255", "SoftBCEWithLogitsLoss: 255 without ignore_index",
        _forward("SoftBCEWithLogitsLoss", (), _randn(2, 1, 4, 4), _labels(2, 4, 4, value=255),
                 ignore_index=None),
        InvalidTargetError, ("found [255]", "ignore_index=255")),
    row("soft-bce-pos-weight-shape", "pos_weight (3,) for an output (2, 3, 4, 5)",
        _forward("SoftBCEWithLogitsLoss", (), _randn(2, 3, 4, 5), _randn(2, 3, 4, 5),
                 pos_weight=[1.0, 2.0, 3.0]),
        InvalidOptionError, ("pos_weight of shape (3,)", "does not broadcast", "(c, 1, 1)")),
    row("soft-bce-complex-target", "a complex target",
        _forward("SoftBCEWithLogitsLoss", (), _randn(2, 1, 4), _labels(2, 1, 4,
                 dtype="cfloat")),
        InvalidTargetError, ("real 0/1 values", "complex")),
    row("mcc-three-channels", "MCCLoss on 3 channels",
        _forward("MCCLoss", (), _randn(2, 3, 4, 4), _labels(2, 4, 4, high=2)),
        InvalidTargetError, ("only binary mode", "3 channels")),
    row("mcc-target-two", "MCCLoss with target value 2",
        _forward("MCCLoss", (), _randn(2, 1, 4, 4), _labels(2, 4, 4, value=2)),
        InvalidTargetError, ("0/1", "found [2]")),
]
