"""SMP's documented ``timm-`` encoders, built by the ``tu-`` encoder of segcore-timm.

``build_encoder`` builds the timm model a name stands for (``timm-resnest14d`` ->
``tu-resnest14d.gluon_in1k``) with the factory that the registry resolves for that ``tu-``
name (segcore-timm's, a declared dependency; plugins never import each other, they meet in
the core's registry). The encoder is that module (timm's feature extractor in ``self.model``,
as SMP 0.6.0's ``TimmUniversalEncoder``) with the key mapping of the documentation's era as
its ``remap_state_dict``, and the documented name as ``encoder_name``.

State dict layouts:

* SMP 0.6.0 (``smp.encoders.get_encoder("timm-resnest14d").state_dict()``): ``model.<timm
  feature extractor keys>``; loads unchanged.
* SMP 0.2-0.4: the encoder *was* timm's network minus its classifier (``ResNestEncoder(ResNet)``,
  ``RegNetEncoder(RegNet)``, ``GERNetEncoder(ByobNet)``...), so keys had no ``model.`` prefix
  (``conv1.0.weight``, ``s1.b1.conv1.conv.weight``, ``stages.0.0...``), and its weights were
  timm's classifier checkpoints. ``remap_state_dict`` adds the prefix, renames GERNet's
  ``stages.<i>`` to the feature extractor's flattened ``stages_<i>``, and drops the modules
  the feature extractor does not have (the classifier, stages beyond ``depth``). The
  MobileNetV3 encoders of that era already kept timm's feature extractor in ``model``.

This module imports timm (through segcore-timm); the plugin imports it only to build.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch
from torch import nn

from segcore.errors import UnknownWeightsError, WeightsNotFoundError
from segcore.registry import get_registry
from segcore.weights import OFFLINE_VARIABLE, offline

#: the open-ended encoder names of segcore-timm, and its one weights tag (timm's pretrained)
PREFIX = "tu-"
WEIGHTS_TAG = "imagenet"

#: The prefix of SMP 0.6.0's keys: timm's feature extractor is ``TimmUniversalEncoder.model``.
MODEL_PREFIX = "model."
#: File names timm looks for in a Hugging Face repository, the preferred first.
HUB_FILENAMES = ("model.safetensors", "pytorch_model.bin")

_NESTED_STAGE = re.compile(r"^stages\.(\d+)\.")


def remap_state_dict(
    state_dict: Mapping[str, torch.Tensor], modules: Collection[str]
) -> dict[str, torch.Tensor]:
    """Keys of an SMP 0.2-0.4 ``timm-`` encoder (or timm checkpoint) -> SMP 0.6.0's keys.

    Args:
        state_dict: the loaded tensors. Keys that already start with ``model.`` (SMP 0.6.0,
            and the MobileNetV3 encoders of every version) are kept as they are.
        modules: names of the top-level modules of the timm feature extractor
            (``encoder.model``), e.g. ``{"conv1", "bn1", "layer1", ...}``.

    Returns:
        a new dict: unprefixed keys get ``model.``; ``stages.<i>.`` becomes ``stages_<i>.``
        when the extractor flattened its stages (GERNet); unprefixed keys of modules the
        extractor does not have (``fc``, ``head``, ``conv_head``, ``classifier``, stages
        beyond the encoder's depth) are dropped, as SMP 0.2-0.4 dropped the classifier.

    Example::

        remap_state_dict({"conv1.weight": w, "fc.weight": f}, {"conv1", "bn1"})
        # {"model.conv1.weight": w}
    """
    flattened = any(name.startswith("stages_") for name in modules)
    remapped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(MODEL_PREFIX):
            remapped[key] = value
            continue
        inner = _NESTED_STAGE.sub(r"stages_\1.", key) if flattened else key
        if inner.split(".", 1)[0] not in modules:
            continue
        remapped[MODEL_PREFIX + inner] = value
    return remapped


def _tu_factory(timm_name: str) -> Callable[..., nn.Module]:
    """The factory the registry resolves for ``tu-<timm_name>`` (segcore-timm's)."""
    return get_registry().load("encoders", PREFIX + timm_name, "factory")


def _as_family_encoder(encoder: nn.Module, name: str) -> nn.Module:
    """Give the ``tu-`` encoder its documented name and the older key mapping.

    The module, its parameters and state-dict keys stay those segcore-timm built (SMP 0.6.0's
    layout); ``remap_state_dict`` (called by the core for weight files) also accepts the keys
    of SMP 0.2-0.4 (see ``remap_state_dict``).
    """
    modules = frozenset(child for child, _ in encoder.model.named_children())
    encoder.remap_state_dict = functools.partial(remap_state_dict, modules=modules)
    encoder.encoder_name = name
    return encoder


def cached_weights(repository: str) -> str | None:
    """The cached file of a Hugging Face repository timm would load, or ``None``."""
    from huggingface_hub import try_to_load_from_cache

    for filename in HUB_FILENAMES:
        path = try_to_load_from_cache(repository, filename)
        if isinstance(path, str):
            return path
    return None


def _missing_weights(name: str, timm_name: str, repository: str, reason: str) -> str:
    from huggingface_hub import constants

    folder = f"{constants.HF_HUB_CACHE}/models--{repository.replace('/', '--')}"
    return (
        f"encoder {name!r}: weights 'imagenet' are timm's {timm_name}, the file "
        f"{HUB_FILENAMES[0]!r} of the Hugging Face repository {repository!r} "
        f"(https://huggingface.co/{repository}); they are not in the Hugging Face cache "
        f"({folder}) and {reason}. On a machine with internet run `hf download {repository} "
        f"{HUB_FILENAMES[0]}` (or create the model with timm and pretrained=True), then copy "
        f"{folder} to the same place here (HF_HOME / HF_HUB_CACHE choose the cache folder); "
        f"or pass encoder_weights=None for random initialisation."
    )


def build_encoder(
    name: str,
    depth: int = 5,
    *,
    timm_model: str,
    timm_tag: str,
    in_channels: int = 3,
    output_stride: int = 32,
    weights: str | bool | None = None,
    **kwargs: Any,
) -> nn.Module:
    """The factory of the ``timm-`` encoders (called by ``segcore.get_encoder``).

    Args:
        name: the documented name (``"timm-resnest14d"``).
        depth: reductions returned, 1-5.
        timm_model, timm_tag: the timm model and the pretrained tag ``"imagenet"`` stands for
            (from the spec: ``"resnest14d"``, ``"gluon_in1k"``).
        in_channels: input channels (timm adapts the first convolution, pretrained too).
        output_stride: 32, or 16/8 (timm dilates the deepest stages).
        weights: ``None`` or ``"imagenet"`` (``True`` too): timm's weights of
            ``<timm_model>.<timm_tag>``, from the Hugging Face cache, or downloaded by timm
            unless ``SEGCORE_OFFLINE`` is set.
        **kwargs: passed to ``timm.create_model`` (``drop_path_rate=0.1``...).

    Raises:
        WeightsNotFoundError: the weights are not cached and cannot be downloaded; the message
            names the repository, the file and the cache folder.

    Example::

        encoder = build_encoder("timm-gernet_s", timm_model="gernet_s", timm_tag="idstcv_in1k",
                                depth=4, output_stride=16)
    """
    if weights is not None and weights is not False and weights not in (WEIGHTS_TAG, True):
        raise UnknownWeightsError(
            f"encoder {name!r} has the weights tag {WEIGHTS_TAG!r} (timm's "
            f"{timm_model}.{timm_tag}) only, got {weights!r}; or pass a weights file."
        )
    pretrained = weights is not None and weights is not False
    timm_name = f"{timm_model}.{timm_tag}"
    options = dict(kwargs)
    if pretrained:
        repository = f"timm/{timm_name}"
        path = cached_weights(repository)
        if path is None and offline():
            raise WeightsNotFoundError(_missing_weights(
                name, timm_name, repository,
                f"{OFFLINE_VARIABLE} is set, so they are not downloaded"))
        if path is not None:  # load the cached file: no network, whatever timm would ask
            options["pretrained_cfg_overlay"] = {"file": path}
        try:
            universal = _tu_factory(timm_name)(
                PREFIX + timm_name, in_channels=in_channels, depth=depth,
                output_stride=output_stride, weights=WEIGHTS_TAG, **options)
        except WeightsNotFoundError as error:
            raise WeightsNotFoundError(_missing_weights(
                name, timm_name, repository, f"timm could not download them ({error})"
            )) from error
    else:
        universal = _tu_factory(timm_name)(
            PREFIX + timm_name, in_channels=in_channels, depth=depth,
            output_stride=output_stride, weights=None, **options)
    return _as_family_encoder(universal, name)
