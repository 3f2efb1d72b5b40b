"""``segcore.smp``: SMP-style scripts run through the compat module, and each behaviour where
segcore.smp decides between SMP 0.6.0 and segcore (docs/smp.md) is pinned here.

SMP itself is not needed; tests/parity/test_parity_smp_compat.py compares with it.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import segcore
import segcore.smp as smp
from segcore.errors import (
    InvalidOptionError,
    InvalidTargetError,
    MissingDependencyError,
    SkippedWeightsWarning,
    UnknownNameError,
    UnknownOptionError,
    UnknownWeightsError,
)
from segcore.smp import CompatibilityWarning

for _package in ("segcore_unet", "segcore_fpn", "segcore_resnet", "segcore_losses",
                 "segcore_metrics", "segcore_timm"):
    pytest.importorskip(_package)

SMP_ARCHITECTURES = ["unet", "unetplusplus", "manet", "linknet", "fpn", "pspnet", "deeplabv3",
                     "deeplabv3plus", "pan", "upernet", "segformer", "dpt"]


def _batch(seed: int = 0, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(2, 3, 64, 64, generator=generator),
            torch.randint(0, classes, (2, 64, 64), generator=generator))


# -- import cost ---------------------------------------------------------------------------
def test_import_is_light() -> None:
    script = (
        "import sys, json\n"
        "import segcore.smp as smp, segcore.smp.losses, segcore.smp.metrics\n"
        "smp.losses.BINARY_MODE\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm')\n"
        "               or (m.startswith('segcore_') and not m.endswith('.plugin')))\n"
        "print(json.dumps(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=120)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


# -- SMP-style scripts -----------------------------------------------------------------------
def test_script_train_step_metrics_save_and_load(tmp_path) -> None:
    torch.manual_seed(0)
    model = smp.Unet("resnet18", encoder_weights=None, classes=2)
    loss_fn = smp.losses.DiceLoss(smp.losses.MULTICLASS_MODE, from_logits=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, masks = _batch()

    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    loss = loss_fn(model(images), masks)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and loss.dim() == 0
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()
               if k in before)

    model.eval()
    with torch.no_grad():
        logits = model(images)
    tp, fp, fn, tn = smp.metrics.get_stats(logits.argmax(1), masks, mode="multiclass",
                                           num_classes=2)
    assert tp.shape == (2, 2) and tp.dtype == torch.long
    iou = smp.metrics.iou_score(tp, fp, fn, tn, reduction="micro")
    f1 = smp.metrics.f1_score(tp, fp, fn, tn, reduction="macro")
    assert 0.0 <= float(iou) <= 1.0 and 0.0 <= float(f1) <= 1.0
    total = tp.sum() + fp.sum()
    assert float(iou) == pytest.approx(float(tp.sum() / (total + fn.sum())))

    model.save_pretrained(tmp_path / "run", metrics={"iou": float(iou)}, dataset="toy-fields")
    loaded = smp.from_pretrained(tmp_path / "run")
    assert isinstance(loaded, smp.Unet) and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), logits)


def test_script_create_model() -> None:
    model = smp.create_model("FPN", encoder_name="resnet18", encoder_weights=None, classes=3)
    assert isinstance(model, smp.FPN)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    defaults = {name: p.default for name, p in inspect.signature(smp.create_model).parameters
                .items() if p.default is not inspect.Parameter.empty}
    assert defaults == {"encoder_name": "resnet34", "encoder_weights": "imagenet",
                        "in_channels": 3, "classes": 1}
    with pytest.raises(KeyError, match=r"unknown architecture 'unte'.*'unet'"):
        smp.create_model("unte", encoder_weights=None)


def test_classes_default_to_imagenet_weights() -> None:
    for name in smp.ARCHITECTURE_CLASSES:
        parameter = inspect.signature(getattr(smp, name)).parameters["encoder_weights"]
        assert parameter.default == "imagenet", name


def test_script_preprocessing() -> None:
    preprocess = smp.encoders.get_preprocessing_fn("resnet18", "imagenet")
    params = smp.encoders.get_preprocessing_params("resnet18")
    assert params["mean"] == pytest.approx([0.485, 0.456, 0.406])
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    expected = (image / 255.0 - np.array(params["mean"])) / np.array(params["std"])
    np.testing.assert_allclose(preprocess(image), expected, rtol=1e-5, atol=1e-5)
    from segcore.smp.encoders import get_preprocessing_fn as imported

    assert imported is smp.encoders.get_preprocessing_fn


def test_architecture_mapping() -> None:
    mapping = smp.MODEL_ARCHITECTURES_MAPPING
    assert list(mapping) == SMP_ARCHITECTURES and len(mapping) == 12
    for key, name in zip(SMP_ARCHITECTURES, smp.ARCHITECTURE_CLASSES, strict=True):
        assert mapping[key] is getattr(smp, name) is getattr(segcore, name)
    assert "unet" in mapping and "Unet" not in mapping
    with pytest.raises(TypeError):
        mapping["mine"] = object  # type: ignore[index]


def test_import_forms() -> None:
    from segcore.smp.losses import BINARY_MODE, DiceLoss, FocalLoss
    from segcore.smp.losses._functional import soft_dice_score
    from segcore.smp.losses.constants import MULTILABEL_MODE
    from segcore.smp.metrics import get_stats, iou_score
    from segcore.smp.metrics.functional import f1_score

    assert (BINARY_MODE, MULTILABEL_MODE) == (segcore.BINARY_MODE, segcore.MULTILABEL_MODE)
    assert DiceLoss is smp.losses.DiceLoss and FocalLoss is smp.losses.FocalLoss
    assert iou_score is segcore.get_metric("iou_score")
    assert f1_score is smp.metrics.f1_score and callable(get_stats)
    assert callable(soft_dice_score)
    assert smp.__version__ == "0.6.0" and smp.__segcore_version__ == segcore.__version__


def test_losses_are_segcores() -> None:
    import segcore_losses

    dice = smp.losses.DiceLoss("binary")
    assert isinstance(dice, segcore_losses.DiceLoss) and type(dice).__name__ == "DiceLoss"
    assert smp.losses.SoftBCEWithLogitsLoss is segcore_losses.SoftBCEWithLogitsLoss
    # a compat loss pickles (torch.save of a whole training state)
    import io

    buffer = io.BytesIO()
    torch.save(dice, buffer)
    buffer.seek(0)
    assert type(torch.load(buffer, weights_only=False)) is type(dice)


# -- decision 1: binary losses with (N, 1, L) and (N, 1, 1, L) --------------------------------
@pytest.mark.parametrize("name", ["DiceLoss", "JaccardLoss", "TverskyLoss", "FocalLoss",
                                  "LovaszLoss", "MCCLoss"])
def test_binary_losses_flatten_size_one_axes_like_smp(name: str) -> None:
    import segcore_losses

    generator = torch.Generator().manual_seed(1)
    output = torch.randn(2, 1, 16, generator=generator)
    target = (torch.rand(2, 1, 1, 16, generator=generator) > 0.5).float()
    options = {} if name == "MCCLoss" else {"mode": "binary"}
    if name == "MCCLoss":
        output = output.sigmoid()
    compat = getattr(smp.losses, name)(**options)
    expected = compat(output, target.reshape(2, 1, 16))
    torch.testing.assert_close(compat(output, target), expected)
    torch.testing.assert_close(compat(output.reshape(2, 1, 1, 16), target.reshape(2, 1, 16)),
                               expected)
    torch.testing.assert_close(compat(output.reshape(2, 1, 16, 1), target.reshape(2, 16)),
                               expected)
    if name != "MCCLoss":  # segcore itself keeps refusing the pair
        with pytest.raises(InvalidTargetError):
            getattr(segcore_losses, name)(**options)(output, target)


def test_binary_flattening_refuses_real_reshapes_and_keeps_none_reduction_shape() -> None:
    loss = smp.losses.DiceLoss("binary")
    with pytest.raises(InvalidTargetError, match="do not match"):
        loss(torch.randn(2, 1, 4, 4), torch.ones(2, 1, 16))  # a real reshape: ambiguous
    with pytest.raises(InvalidTargetError, match="one channel"):
        loss(torch.randn(2, 3, 16), torch.ones(2, 3, 16))  # 3 channels in binary mode
    focal = smp.losses.FocalLoss("binary", reduction="none")
    output = torch.randn(2, 1, 16)
    assert focal(output, torch.ones(2, 1, 1, 16)).shape == output.shape


# -- decision 2: unfreeze_encoder() on a model in eval mode -----------------------------------
def test_unfreeze_encoder_keeps_eval_norm_layers_in_eval() -> None:
    model = smp.Unet("resnet18", encoder_weights=None, classes=1).eval()
    norms = [m for m in model.encoder.modules()
             if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
    model.freeze_encoder()
    model.unfreeze_encoder()
    assert all(p.requires_grad for p in model.encoder.parameters())
    assert not any(m.training for m in norms)  # SMP 0.6.0 would put them back to train
    model.train()
    assert all(m.training for m in norms)


# -- decision 3: the functional helpers ------------------------------------------------------
def test_functional_helpers() -> None:
    from segcore.smp.losses import _functional as F

    generator = torch.Generator().manual_seed(2)
    probs = torch.rand(2, 3, 8, generator=generator)
    target = (torch.rand(2, 3, 8, generator=generator) > 0.5).float()
    tp = (probs * target).sum((0, 2))
    fp, fn = (probs * (1 - target)).sum((0, 2)), ((1 - probs) * target).sum((0, 2))
    torch.testing.assert_close(F.soft_dice_score(probs, target, dims=(0, 2)),
                               2 * tp / (2 * tp + fp + fn))
    torch.testing.assert_close(F.soft_jaccard_score(probs, target, dims=(0, 2)),
                               tp / (tp + fp + fn))
    torch.testing.assert_close(F.soft_tversky_score(probs, target, 0.3, 0.7, dims=(0, 2)),
                               tp / (tp + 0.3 * fp + 0.7 * fn))
    assert F.soft_dice_score(target, target).item() == pytest.approx(1.0)

    logits = torch.randn(4, 5, generator=generator)
    labels = (torch.rand(4, 5, generator=generator) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    expected = (1 - torch.exp(-bce)) ** 2 * bce * (0.25 * labels + 0.75 * (1 - labels))
    torch.testing.assert_close(F.focal_loss_with_logits(logits, labels), expected.mean())
    torch.testing.assert_close(F.focal_loss_with_logits(logits, labels, reduction="none"),
                               expected)
    classes = torch.randint(0, 5, (4,), generator=generator)
    ce = torch.nn.functional.cross_entropy(logits, classes, reduction="none")
    torch.testing.assert_close(F.softmax_focal_loss_with_logits(logits, classes, gamma=0.0),
                               ce.mean())
    with pytest.raises(InvalidTargetError, match="same shape"):
        F.soft_dice_score(probs, target[:1])
    with pytest.raises(InvalidOptionError, match="reduction"):
        F.focal_loss_with_logits(logits, labels, reduction="avg")


# -- decision 4: get_encoder(..., **unused) --------------------------------------------------
def test_get_encoder_ignores_unused_kwargs_with_a_warning() -> None:
    with pytest.warns(CompatibilityWarning, match="ignoring 'drop_path_rate'"):
        encoder = smp.encoders.get_encoder("resnet18", depth=3, drop_path_rate=0.1)
    assert len(encoder.out_channels) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tu- encoders take them: passed on, no warning
        timm_encoder = smp.encoders.get_encoder("tu-resnet18", drop_path_rate=0.1)
    assert any(type(m).__name__ == "DropPath" for m in timm_encoder.modules())
    with pytest.raises(UnknownOptionError):  # segcore itself refuses them
        segcore.get_encoder("resnet18", drop_path_rate=0.1)
    with pytest.raises(UnknownOptionError, match="refused"):  # unsafe ones stay refused
        smp.encoders.get_encoder("tu-resnet18", checkpoint_path="/tmp/x.pth")


def test_get_encoder_names_lists_other_spellings() -> None:
    names = smp.encoders.get_encoder_names()
    assert "resnet18" in names and len(names) == len(set(names))
    assert set(segcore.list_encoders()) <= set(names)


# -- decision 5: a string encoder_weights on a tu- encoder ------------------------------------
def test_tu_encoder_refuses_other_weight_tags(segcore_offline) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SMP-style warning: the tag is refused
        with pytest.raises(UnknownWeightsError, match="'ssl'"):
            smp.encoders.get_encoder("tu-resnet18", weights="ssl")
        with pytest.raises(UnknownWeightsError, match="'ssl'"):
            smp.Unet("tu-resnet18", encoder_weights="ssl")


# -- decision 6: _is_torch_scriptable / _compilable / _exportable ----------------------------
@pytest.mark.parametrize("name", list(smp.ARCHITECTURE_CLASSES))
def test_torch_flags_of_models(name: str) -> None:
    model_class = getattr(smp, name)
    assert model_class._is_torch_scriptable is (name not in ("UnetPlusPlus", "DPT"))
    assert model_class._is_torch_compilable is True
    assert model_class._is_torch_exportable is True


@pytest.mark.parametrize("encoder", ["resnet18", "dpn68"])
def test_torch_flags_of_encoders_say_what_works(encoder: str) -> None:
    """The flags describe segcore's encoders: DPN scripts here (SMP's does not, and says so)."""
    if encoder.startswith("dpn"):
        pytest.importorskip("segcore_dpn")
    built = smp.encoders.get_encoder(encoder, weights=None).eval()
    assert built._is_torch_scriptable is True
    assert built._is_torch_compilable is True and built._is_torch_exportable is True
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for scripted, eager in zip(torch.jit.script(built)(x), built(x)):
            torch.testing.assert_close(scripted, eager)


# -- decision 7: save_pretrained(DIR, metrics=..., dataset=...) ------------------------------
def test_save_pretrained_with_metrics_and_dataset(tmp_path) -> None:
    model = smp.create_model("unet", encoder_name="resnet18", encoder_weights=None,
                             classes=2).eval()
    model.save_pretrained(tmp_path, metrics={"miou": 0.875}, dataset="toy-fields")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_model_class"] == "Unet" and config["encoder_name"] == "resnet18"
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "toy-fields" in card and "miou" in card and "0.875" in card
    loaded = smp.from_pretrained(str(tmp_path))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    with pytest.warns(SkippedWeightsWarning):
        finetune = smp.from_pretrained(tmp_path, classes=5, strict=False)
    assert finetune.segmentation_head[0].out_channels == 5
    with pytest.raises(UnknownOptionError, match="force_download"):
        smp.from_pretrained(tmp_path, force_download=True)
    assert isinstance(smp.Unet.from_pretrained(tmp_path), smp.Unet)  # SMP's class method
    with pytest.raises(InvalidOptionError, match=r"holds a Unet, not a FPN"):
        smp.FPN.from_pretrained(tmp_path)


# -- what is not served, and missing plugins ---------------------------------------------------
@pytest.mark.parametrize(("module", "name", "pattern"), [
    ("", "datasets", "not part of segcore"),
    ("", "decoders", "architecture plugins"),
    ("", "base", "segcore.SegmentationModel"),
    ("encoders", "encoders", "plugins"),
    ("encoders", "TimmUniversalEncoder", "segcore-timm"),
])
def test_names_not_served_explain(module: str, name: str, pattern: str) -> None:
    namespace = getattr(smp, module) if module else smp
    with pytest.raises(AttributeError, match=pattern):
        getattr(namespace, name)
    assert not hasattr(namespace, "surely_not_a_name")


@pytest.fixture
def no_plugin_installed(monkeypatch: pytest.MonkeyPatch):
    """As if only the core were installed: no entry point of the segcore group is found."""
    import importlib_metadata

    from segcore import plugins

    found = importlib_metadata.entry_points

    def entry_points(**selection):
        if selection.get("group") == plugins.ENTRY_POINT_GROUP:
            return importlib_metadata.EntryPoints([])
        return found(**selection)

    monkeypatch.setattr(importlib_metadata, "entry_points", entry_points)
    plugins.reset()
    yield
    plugins.reset()


def test_missing_plugins_name_the_package(no_plugin_installed) -> None:
    with pytest.raises(MissingDependencyError, match="pip install segcore-unet"):
        smp.Unet  # noqa: B018
    with pytest.raises(ImportError, match="pip install segcore-losses"):
        from segcore.smp.losses import DiceLoss  # noqa: F401
    with pytest.raises(ImportError, match="pip install segcore-metrics"):
        from segcore.smp.metrics import iou_score  # noqa: F401
    with pytest.raises(MissingDependencyError, match="pip install segcore-metrics"):
        smp.metrics.get_stats  # noqa: B018
    with pytest.raises(UnknownNameError, match="pip install segcore-fpn"):
        smp.create_model("FPN", encoder_weights=None)
    assert list(smp.MODEL_ARCHITECTURES_MAPPING) == []
    with pytest.raises(KeyError, match="pip install segcore-deeplab"):
        smp.MODEL_ARCHITECTURES_MAPPING["deeplabv3plus"]
    assert smp.losses.BINARY_MODE == "binary"  # constants need no plugin


def test_blocked_plugins_name_the_package_and_the_setting(segcore_without_plugins) -> None:
    with pytest.raises(MissingDependencyError,
                       match="segcore-losses, which is installed but blocked by "
                             "SEGCORE_DISABLE_PLUGINS"):
        smp.losses.FocalLoss  # noqa: B018
    with pytest.raises(MissingDependencyError, match=r"segcore-unet.*blocked"):
        smp.Unet  # noqa: B018
