"""``SegmentationModel``: encoder -> decoder -> segmentation head (+ classification head).

An architecture plugin subclasses it with the documented constructor, an attrs options class
and two methods::

    @attrs.frozen
    class UnetOptions(ArchitectureOptions):
        decoder_channels: tuple[int, ...] = attrs.field(default=(256, 128, 64, 32, 16), ...)

        def check(self, encoder_depth: int) -> None:   # cross-field checks
            ...

    class Unet(SegmentationModel):
        architecture = "unet"
        options_class = UnetOptions
        requires_divisible_input_shape = False

        def __init__(self, encoder_name="resnet34", ..., **kwargs):
            super().__init__(**self.constructor_arguments(locals()))

        def build_decoder(self, encoder_channels, options): ...
        def segmentation_head_options(self, options): return {"in_channels": ..., ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from segcore.encoder import check_depth
from segcore.errors import InputShapeError, InputTypeError, InvalidOptionError
from segcore.heads import ClassificationHead, SegmentationHead, check_aux_params
from segcore.nn import ActivationOption, check_activation, initialize_decoder, initialize_head
from segcore.options import ArchitectureOptions, batchnorm_option, refuse_decoder_typos

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
#: config.json key naming the model class; SMP 0.6.0's ``from_pretrained`` reads it
CLASS_KEY = "_model_class"
#: config.json key naming the segcore architecture (SMP ignores keys that start with ``_``)
ARCHITECTURE_KEY = "_architecture"
#: constructor arguments every architecture has (the others are its options or encoder
#: parameters)
COMMON_ARGUMENTS = ("encoder_name", "encoder_depth", "in_channels", "classes", "activation",
                    "aux_params")


def _compiling() -> bool:
    return bool(
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
    )


class SegmentationModel(nn.Module):
    """Base class of every architecture.

    ``forward(x)`` takes ``(N, in_channels, H, W)`` and returns mask logits
    ``(N, classes, H, W)``, or ``(mask, labels)`` with labels ``(N, aux classes)`` when
    ``aux_params`` was given.
    """

    architecture: ClassVar[str] = ""
    options_class: ClassVar[type[ArchitectureOptions]] = ArchitectureOptions
    #: whether H and W must be multiples of the encoder's output stride
    requires_divisible_input_shape: ClassVar[bool] = True
    #: the smallest encoder depth the decoder works with
    min_encoder_depth: ClassVar[int] = 3
    #: whether the encoder must support dilation (``output_stride`` 8/16) with default options
    requires_dilation: ClassVar[bool] = False
    #: the documented constructor's older normalisation argument (SMP's
    #: ``decoder_use_batchnorm``), which ``decoder_use_norm=None`` follows; ``None``: none
    batchnorm_argument: ClassVar[str | None] = None
    #: prefixes of decoder arguments: a ``**kwargs`` name with one of them is a misspelt option
    decoder_argument_prefixes: ClassVar[tuple[str, ...]] = ("decoder_",)
    #: ``True``: inputs of any size are padded (zeros, bottom and right) to the next multiple of
    #: ``input_divisor()`` and the mask is cropped back, so it always matches the input; sizes
    #: that are already multiples go through untouched (identical to SMP). Set it to ``False``
    #: on a model for SMP's strict behaviour: ``InputShapeError`` for other sizes.
    pad_inputs: bool = True
    # TorchScript (torch.jit.script) reads ``_padding_divisor`` once, when it compiles the
    # model, and compiles no property of the Python API.
    __constants__ = ["_padding_divisor"]
    __jit_unused_properties__ = ["config", "_padding_divisor"]
    #: what the model supports (SMP 0.6.0's flags, same names): ``torch.jit.script``,
    #: ``torch.export``, ``torch.compile``; docs/export.md has the tested matrix
    _is_torch_scriptable: ClassVar[bool] = True
    _is_torch_exportable: ClassVar[bool] = True
    _is_torch_compilable: ClassVar[bool] = True

    def __init__(
        self,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | os.PathLike[str] | bool | None = None,
        in_channels: int = 3,
        classes: int = 1,
        activation: ActivationOption = None,
        aux_params: Mapping[str, Any] | None = None,
        encoder_params: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        from segcore.factory import get_encoder, get_encoder_spec

        name = self.architecture or type(self).__name__
        check_depth(encoder_depth, range(self.min_encoder_depth, 6), needed_by=name)
        self._check_common_arguments(in_channels, classes, activation, aux_params)
        parsed = self.options_class.from_options(name, **options)
        parsed.check(encoder_depth)
        self.options = parsed
        self._in_channels = in_channels
        self._is_encoder_frozen = False
        #: the spec of the encoder (capabilities such as ``deepest_feature_pooled``), for
        #: ``build_decoder``
        self.encoder_spec = get_encoder_spec(encoder_name)

        self.encoder = get_encoder(
            encoder_name,
            in_channels=in_channels,
            depth=encoder_depth,
            weights=encoder_weights,
            output_stride=self.encoder_output_stride(parsed),
            needed_by=name,
            other_options=self.options_class.names(),
            **dict(encoder_params or {}),
        )
        self.decoder = self.build_decoder(tuple(self.encoder.out_channels), parsed)
        self.segmentation_head = SegmentationHead(
            out_channels=classes, activation=activation, **self.segmentation_head_options(parsed)
        )
        self._finish_build(locals(), parsed)

    @staticmethod
    def _check_common_arguments(in_channels: int, classes: int, activation: ActivationOption,
                                aux_params: Mapping[str, Any] | None) -> None:
        """Refuse bad common arguments (``InvalidOptionError``), before anything is built.

        For subclasses that build their own encoder instead of calling ``__init__`` (DPT).
        """
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("classes", classes)
        check_activation(activation)
        if aux_params is not None:
            check_aux_params(aux_params)

    def _finish_build(self, arguments: Mapping[str, Any], options: ArchitectureOptions) -> None:
        """Add the classification head, ``name`` and ``config``, then initialise the weights.

        ``arguments`` holds the common arguments (``COMMON_ARGUMENTS`` and ``encoder_params``);
        ``self.encoder`` is built. Subclasses that build their own encoder (DPT) end with it.
        """
        aux_params = arguments["aux_params"]
        self.classification_head: nn.Module | None = (
            ClassificationHead(in_channels=self.encoder.out_channels[-1], **aux_params)
            if aux_params is not None
            else None
        )
        name = self.architecture or type(self).__name__
        self.name = f"{name}-{arguments['encoder_name']}"
        activation = arguments["activation"]
        self._config = {
            "architecture": name,
            **{key: arguments[key] for key in COMMON_ARGUMENTS},
            "activation": activation if activation is None or isinstance(activation, str)
            else None,
            "aux_params": dict(aux_params) if aux_params is not None else None,
            "encoder_params": dict(arguments["encoder_params"] or {}),
            **options.as_dict(),
        }
        self.initialize()

    @classmethod
    def constructor_arguments(cls, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``SegmentationModel.__init__`` for a documented constructor.

        ``arguments`` is the constructor's ``locals()`` taken first thing (its parameters
        only): ``super().__init__(**self.constructor_arguments(locals()))``. Its ``**kwargs``
        (named ``kwargs``) become ``encoder_params``, after names there with a
        ``decoder_argument_prefixes`` prefix are refused as misspelt options
        (``UnknownOptionError`` with suggestions). When the class names a
        ``batchnorm_argument``, that argument is checked and replaces ``decoder_use_norm=None``.
        The other parameters (the common arguments and the options) are passed on by name.
        """
        passed = {name: value for name, value in arguments.items()
                  if name not in ("self", "__class__", "kwargs")}
        encoder_params = arguments.get("kwargs") or {}
        alias = cls.batchnorm_argument
        valid = [*([alias] if alias is not None else []), *cls.options_class.names()]
        refuse_decoder_typos(cls.architecture or cls.__name__, encoder_params, valid,
                             prefixes=cls.decoder_argument_prefixes)
        if alias is not None:
            older = passed.pop(alias)
            if passed.get("decoder_use_norm") is None:
                passed["decoder_use_norm"] = batchnorm_option(older, alias)
        return {**passed, "encoder_params": encoder_params}

    # -- what subclasses provide ---------------------------------------------------------
    def encoder_output_stride(self, options: Any) -> int:
        """The ``output_stride`` the encoder is built with (32: no dilation)."""
        return 32

    def build_decoder(self, encoder_channels: tuple[int, ...], options: Any) -> nn.Module:
        raise NotImplementedError

    def segmentation_head_options(self, options: Any) -> dict[str, Any]:
        """``in_channels``, ``kernel_size`` and ``upsampling`` of the segmentation head."""
        raise NotImplementedError

    # -- behaviour -----------------------------------------------------------------------
    def initialize(self) -> None:
        initialize_decoder(self.decoder)
        initialize_head(self.segmentation_head)
        if self.classification_head is not None:
            initialize_head(self.classification_head)

    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model with ``segcore.from_config``.

        Tuples become lists so it is JSON-serialisable; a callable activation is stored as
        ``None`` (pass it again when rebuilding).
        """
        return json.loads(json.dumps(self._config, default=list))

    def check_input_shape(self, x: torch.Tensor) -> None:
        """Raise ``InputShapeError`` naming the fix when ``x`` cannot go through the model.

        ``x`` must be a ``torch.Tensor`` (else ``InputTypeError``) of shape ``(N, C, H, W)``
        with ``C = in_channels``, ``H, W`` divisible by the output stride when the architecture
        needs it, and at least the smallest size the model takes once a failed forward pass
        has found it. Only shapes are read.
        """
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(_not_a_tensor_message(x, self._in_channels))
        if x.dim() != 4:
            raise InputShapeError(_wrong_rank_message(tuple(x.shape), self._in_channels))
        if x.shape[1] != self._in_channels:
            raise InputShapeError(_wrong_channels_message(tuple(x.shape), self._in_channels))
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if height < 1 or width < 1:
            raise InputShapeError(
                f"the input has no pixels: shape {tuple(x.shape)}, height x width "
                f"{height}x{width}. The model takes (N, {self._in_channels}, H, W) with H and W "
                f"at least 1; check how the images were loaded or cropped."
            )
        stride = self.input_divisor()
        if not self.pad_inputs and (height % stride or width % stride):
            up = (_round_up(height, stride), _round_up(width, stride))
            nearest = (_round_nearest(height, stride), _round_nearest(width, stride))
            raise InputShapeError(
                f"{self.architecture or type(self).__name__} needs height and width divisible "
                f"by {stride}, got {height}x{width}. The nearest valid size is "
                f"{nearest[0]}x{nearest[1]}; pad the images to {up[0]}x{up[1]} (or resize/crop), "
                f"or set model.pad_inputs = True to let the model pad and crop."
            )
        # Encoders with unpadded layers (convnext's 4x4 stride-4 stem) refuse tiny inputs: the
        # first forward pass that fails finds the smallest size; later inputs are checked here.
        smallest = self.__dict__.get("_smallest_input_size")
        if smallest is not None and _effective_size(self, height, width) < smallest:
            raise InputShapeError(_too_small_message(self, height, width, smallest))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if torch.jit.is_scripting():
            # TorchScript compiles only this branch: no input checks (Python-only), and the
            # padding multiple is a constant read when the model is scripted.
            return self._run(x, self._padding_divisor)
        else:
            return self._checked_run(x)

    @torch.jit.unused
    def _checked_run(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``forward`` outside TorchScript: input checks in eager mode, none while traced,
        compiled or exported (they only read shapes, but would add guards)."""
        if _compiling():
            return self._run(x, self._padding_divisor)
        self.check_input_shape(x)
        _check_input_dtype(self, x)
        try:
            return self._run(x, self._padding_divisor)
        except (RuntimeError, ValueError) as error:
            _explain_forward_failure(self, x, error)
            raise

    def _run(
        self, x: torch.Tensor, divisor: int
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Pad ``x`` to a multiple of ``divisor`` (1: none), encoder, decoder, heads, crop."""
        height, width = x.shape[-2], x.shape[-1]
        padding = divisor > 1
        inputs = _pad_to_multiple(x, divisor) if padding else x
        features = self.encoder(inputs)
        decoder_output = self.decoder(features)
        masks = self.segmentation_head(decoder_output)
        if padding:
            masks = _crop_to_input(masks, height, width, inputs.shape[-2], inputs.shape[-1])
        if self.classification_head is not None:
            labels = self.classification_head(features[-1])
            return masks, labels
        return masks

    @property
    def _padding_divisor(self) -> int:
        """What ``forward`` pads height and width to a multiple of; 1 for no padding."""
        divisor = self.input_divisor()
        return divisor if self.pad_inputs and divisor > 1 else 1

    def check_input_dtype(self, x: torch.Tensor) -> None:
        """Raise ``InputTypeError`` naming the fix when ``x``'s dtype does not fit the model
        (``x.float() / 255`` for uint8 images, ...); float16/bfloat16 pass under autocast."""
        _check_input_dtype(self, x)

    def input_divisor(self) -> int:
        """What height and width must be multiples of: the encoder's output stride for
        architectures that need divisible sizes, else 1. ``forward`` pads to it (see
        ``pad_inputs``); architectures with other needs (a ViT's patch size) override it."""
        if not self.requires_divisible_input_shape:
            return 1
        return int(self.encoder.output_stride)

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Switch to eval mode and run ``forward`` under ``torch.inference_mode()``."""
        if self.training:
            self.eval()
        return self(x)

    def train(self, mode: bool = True) -> SegmentationModel:
        """As ``nn.Module.train``, but a frozen encoder stays in eval mode."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode must be a bool, got {mode!r}")
        self.training = mode
        for name, module in self.named_children():
            if self._is_encoder_frozen and name == "encoder":
                continue
            module.train(mode)
        return self

    def freeze_encoder(self) -> SegmentationModel:
        """Stop training the encoder: no gradients, normalisation statistics frozen."""
        self._set_encoder_trainable(False)
        return self

    def unfreeze_encoder(self) -> SegmentationModel:
        """Undo ``freeze_encoder``."""
        self._set_encoder_trainable(True)
        return self

    def _set_encoder_trainable(self, trainable: bool) -> None:
        for parameter in self.encoder.parameters():
            parameter.requires_grad = trainable
        for module in self.encoder.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                module.train(trainable and self.training)
        self._is_encoder_frozen = not trainable

    # -- loading and saving ----------------------------------------------------------------
    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """As ``nn.Module.load_state_dict``, with fine-tuning semantics for ``strict=False``.

        ``strict=False`` keeps every tensor that fits and skips those of another shape (a head
        with another class count), which keep their initialisation; a
        ``SkippedWeightsWarning`` lists what was left out. ``strict=True`` raises
        ``WeightsFileError`` naming the first mismatched key and both shapes.
        """
        from segcore.weights import load_fitting

        report = load_fitting(self, state_dict, strict=strict, assign=assign)
        return IncompatibleKeys(list(report.missing), list(report.unexpected))

    def saved_config(self) -> dict[str, Any]:
        """``config.json`` as ``save_pretrained`` writes it: segcore and SMP 0.6.0 read it.

        ``config`` plus ``_model_class`` (SMP's key), ``_architecture`` and
        ``encoder_weights: null`` (the folder carries the weights); encoder parameters are
        top-level keys, as SMP's ``**kwargs``.
        """
        config = self.config
        architecture = config.pop("architecture")
        encoder_params = config.pop("encoder_params", None) or {}
        return {CLASS_KEY: type(self).__name__, ARCHITECTURE_KEY: architecture, **config,
                "encoder_weights": None, **encoder_params}

    def save_pretrained(self, directory: str | os.PathLike[str], *, model_card: bool = False,
                        metrics: Mapping[str, Any] | None = None,
                        dataset: str | None = None, push_to_hub: bool = False,
                        repo_id: str | None = None, token: str | None = None,
                        private: bool | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory``.

        The folder loads with ``segcore.from_pretrained`` and with SMP 0.6.0's
        ``smp.from_pretrained``. ``model_card=True`` (implied by ``metrics`` or ``dataset``)
        also writes ``README.md``, the card that ``push_to_hub`` uploads. ``push_to_hub=True``
        then uploads the model to ``repo_id`` (``"owner/name"``, required with it)
        as ``model.push_to_hub`` does, with ``token`` and ``private``.

        Example::

            model.save_pretrained("runs/best", metrics={"miou": 0.87}, dataset="my-fields")
        """
        if not push_to_hub and (repo_id is not None or token is not None
                                or private is not None):
            given = [name for name, value in (("repo_id", repo_id), ("token", token),
                                              ("private", private)) if value is not None]
            raise InvalidOptionError(
                f"save_pretrained: {', '.join(given)} are for uploading to the Hub: pass "
                f"push_to_hub=True as well, or drop them."
            )
        if push_to_hub and repo_id is None:
            raise InvalidOptionError(
                "save_pretrained(push_to_hub=True) needs repo_id='owner/name', the Hub "
                "repository to upload to."
            )
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self.saved_config()
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        if model_card or metrics is not None or dataset is not None:
            from segcore.hub import model_card as card

            (directory / CARD_FILE).write_text(
                card(config, metrics=metrics, dataset=dataset,
                     preprocessing=_preprocessing_or_none(self.config["encoder_name"])),
                encoding="utf-8",
            )
        if push_to_hub:
            self.push_to_hub(repo_id, metrics=metrics,
                             dataset=dataset, token=token, private=private)
        return directory

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike[str],
                        **kwargs: Any) -> SegmentationModel:
        """``segcore.from_pretrained`` that checks the saved model is a ``cls`` (SMP's class
        method: ``segcore.Unet.from_pretrained("runs/best")``)."""
        model = from_pretrained(path_or_repo_id, **kwargs)
        if not isinstance(model, cls):
            raise InvalidOptionError(
                f"{str(path_or_repo_id)!r} holds a {type(model).__name__}, not a "
                f"{cls.__name__}: load it with segcore.from_pretrained() or "
                f"{type(model).__name__}.from_pretrained()."
            )
        return model

    def push_to_hub(self, repo_id: str, *, metrics: Mapping[str, Any] | None = None,
                    dataset: str | None = None, revision: str | None = None,
                    private: bool | None = None, token: str | None = None,
                    commit_message: str = "Upload segcore model") -> str:
        """Upload config, weights and a model card to the Hugging Face Hub (``segcore[hub]``).

        Returns the commit URL. ``segcore.from_pretrained(repo_id)`` loads it back.

        Example::

            model.push_to_hub("me/field-boundaries", metrics={"miou": 0.87}, dataset="fields")
        """
        import tempfile

        from segcore.hub import model_card, push_folder

        with tempfile.TemporaryDirectory(prefix="segcore-push-") as folder:
            self.save_pretrained(folder)
            (Path(folder) / CARD_FILE).write_text(
                model_card(self.saved_config(), metrics=metrics, dataset=dataset,
                           preprocessing=_preprocessing_or_none(self.config["encoder_name"]),
                           model_name=repo_id),
                encoding="utf-8",
            )
            return push_folder(Path(folder), repo_id, revision=revision, token=token,
                               private=private, commit_message=commit_message)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns (the fields of ``torch.nn.Module``'s result)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _preprocessing_or_none(encoder_name: str) -> dict[str, Any] | None:
    """The encoder's default preprocessing for the model card; ``None`` when it has none."""
    from segcore.errors import SegcoreError
    from segcore.preprocessing import get_preprocessing_params

    try:
        return dict(get_preprocessing_params(encoder_name))
    except SegcoreError:
        return None


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


def _round_nearest(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidOptionError(f"{name} must be a positive int, got {value!r}")


def from_config(
    config: Mapping[str, Any], activation: Callable[..., nn.Module] | None = None
) -> SegmentationModel:
    """Rebuild a model (random weights) from ``model.config`` or a saved ``config.json``.

    Reads segcore's configs (``model.config``, ``saved_config()``) and SMP 0.6.0's
    (``_model_class`` names the class; other keys are encoder parameters).
    """
    from segcore.factory import build

    if config.get("encoder_weights") is not None:
        raise InvalidOptionError(
            "a model config never carries 'encoder_weights' (from_config builds random "
            "weights; from_pretrained loads the saved ones): remove the key"
        )
    arguments = normalize_config(config)
    architecture = arguments.pop("architecture")
    encoder = arguments.pop("encoder_name")
    encoder_params = arguments.pop("encoder_params")
    if activation is not None:
        arguments["activation"] = activation
    return build(architecture, encoder=encoder, encoder_weights=None, **arguments,
                 **encoder_params)


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A model config in ``model.config``'s form, from any form segcore or SMP writes.

    The architecture comes from ``architecture``, ``_architecture`` or SMP's ``_model_class``;
    keys that are neither constructor arguments nor the architecture's options go to
    ``encoder_params``; other ``_``-keys and ``encoder_weights`` are dropped.
    """
    if not isinstance(config, Mapping):
        raise InvalidOptionError(
            f"a model config is a mapping (model.config, or config.json read with json.load), "
            f"got {type(config).__name__}"
        )
    architecture = config.get("architecture", config.get(ARCHITECTURE_KEY))
    if architecture is None and CLASS_KEY in config:
        architecture = _architecture_of_class(config[CLASS_KEY])
    if not isinstance(architecture, str):
        raise InvalidOptionError(
            f"a model config names its architecture ('architecture': 'unet', or SMP's "
            f"'_model_class': 'Unet'), got {architecture!r}"
        )
    if not isinstance(config.get("encoder_name"), str):
        raise InvalidOptionError(
            f"a model config names its encoder ('encoder_name': 'resnet34'), got "
            f"{config.get('encoder_name')!r}"
        )
    from segcore.factory import get_architecture_class

    model_class = get_architecture_class(architecture)
    options = model_class.options_class.names() if issubclass(
        model_class, SegmentationModel) else ()
    encoder_params = config.get("encoder_params") or {}
    if not isinstance(encoder_params, Mapping):
        raise InvalidOptionError(
            f"encoder_params must be a mapping of encoder options, got {encoder_params!r}"
        )
    result: dict[str, Any] = {"architecture": architecture}
    extra = dict(encoder_params)
    for key, value in config.items():
        if key.startswith("_") or key in ("architecture", "encoder_params", "encoder_weights"):
            continue
        if key in COMMON_ARGUMENTS or key in options:
            result[key] = value
        else:
            extra[key] = value
    result["encoder_params"] = extra
    return result


def _architecture_of_class(class_name: Any) -> str:
    """The architecture name of a model class name (``"Unet"`` -> ``"unet"``)."""
    import segcore
    from segcore.errors import UnknownNameError

    if not isinstance(class_name, str) or not class_name.isidentifier():
        raise InvalidOptionError(f"'{CLASS_KEY}' must name a model class, got {class_name!r}")
    try:
        model_class = getattr(segcore, class_name)
    except AttributeError as error:  # the message names the package to install, if known
        known = str(error) if "segcore-" in str(error) else (
            f"no installed architecture has the class {class_name!r}; "
            f"`segcore list architectures` shows those installed")
        raise UnknownNameError(f"model class {class_name!r} ({CLASS_KEY}): {known}") from None
    if not (isinstance(model_class, type) and issubclass(model_class, SegmentationModel)):
        raise UnknownNameError(
            f"{CLASS_KEY} {class_name!r} is not a segmentation model class; "
            f"`segcore list architectures` shows those installed"
        )
    return model_class.architecture or model_class.__name__


def _read_config(config_path: Path) -> dict[str, Any]:
    """``config.json`` of a saved model (segcore's or SMP's), in ``model.config``'s form, or
    ``WeightsFileError`` naming the file."""
    from segcore.errors import UnknownNameError, WeightsFileError

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise WeightsFileError(
            f"{str(config_path)!r} is not readable JSON ({type(error).__name__}: {error}); it "
            f"must be the config.json written by model.save_pretrained()."
        ) from None
    if not isinstance(config, dict):
        raise WeightsFileError(
            f"{str(config_path)!r} holds a JSON {type(config).__name__}, expected an object "
            f"with 'architecture', 'encoder_name' and the model's options (as written by "
            f"model.save_pretrained())."
        )
    named = ("architecture" in config or ARCHITECTURE_KEY in config or CLASS_KEY in config)
    missing = [key for key, there in (("architecture", named),
                                      ("encoder_name", "encoder_name" in config)) if not there]
    if missing:
        raise WeightsFileError(
            f"{str(config_path)!r} lacks the key(s) {', '.join(map(repr, missing))} (or SMP's "
            f"'{CLASS_KEY}'); it must be the config.json written by model.save_pretrained() "
            f"(segcore or SMP)."
        )
    for key in ("architecture", ARCHITECTURE_KEY, CLASS_KEY, "encoder_name"):
        if key in config and not isinstance(config[key], str):
            raise WeightsFileError(
                f"{str(config_path)!r}: {key!r} must be a string, got {config[key]!r}"
            )
    weights = config.pop("encoder_weights", None)
    if weights is not None and not isinstance(weights, str):
        raise WeightsFileError(
            f"{str(config_path)!r}: 'encoder_weights' must be null or a tag, got {weights!r}"
        )
    # a tag there (SMP writes 'imagenet') says how the model started; the folder's own
    # weights replace it, so nothing is downloaded or read
    try:
        return normalize_config(config)
    except UnknownNameError:
        raise
    except InvalidOptionError as error:
        raise WeightsFileError(f"{str(config_path)!r}: {error}") from None


def from_pretrained(path_or_repo_id: str | os.PathLike[str], *, revision: str | None = None,
                    token: str | None = None, classes: int | None = None, strict: bool = True,
                    **overrides: Any) -> SegmentationModel:
    """Load a model saved with ``save_pretrained`` (segcore's or SMP 0.6.0's), from a folder
    or a Hugging Face Hub repository id (``"owner/name"``, needs ``segcore[hub]``).

    The model comes back in eval mode (as SMP's and transformers'); call ``model.train()`` to
    fine-tune. Nothing in the folder can make code run: the config is validated (no weights,
    no file paths or loader options for the encoder) and weights are read with safetensors.

    Args:
        path_or_repo_id: a folder with ``config.json`` and ``model.safetensors``, or a Hub id.
        revision: the Hub revision (branch, tag or commit); only for repository ids.
        token: a Hugging Face token for a private repository (default: the logged-in one,
            or ``HF_TOKEN``).
        classes: build the model with this many classes (fine-tuning); with ``strict=False``
            the heads that do not fit keep their initialisation.
        strict: every saved tensor must fit; ``False`` keeps those that fit and warns
            (``SkippedWeightsWarning``) with the list of skipped keys and shapes.
        **overrides: other constructor arguments to change (``aux_params``, ``activation``).

    Example::

        model = segcore.from_pretrained("runs/best", classes=5, strict=False)
    """
    from segcore.errors import WeightsNotFoundError
    from segcore.weights import load_fitting, load_state_dict

    directory = Path(path_or_repo_id)
    if not (directory / CONFIG_FILE).is_file():
        from segcore import hub

        if (isinstance(path_or_repo_id, str) and not directory.exists()
                and hub.is_repo_id(path_or_repo_id)):
            directory = hub.download_folder(path_or_repo_id, revision=revision, token=token)
        else:
            raise WeightsNotFoundError(
                f"{str(directory)!r} has no {CONFIG_FILE}; it must be a directory written by "
                f"model.save_pretrained() (segcore or SMP), or a Hugging Face Hub repository "
                f"id such as 'owner/name'."
            )
    elif revision is not None or token is not None:
        given = "revision" if revision is not None else "token"
        raise InvalidOptionError(
            f"{given}= is for Hub repositories, but {str(path_or_repo_id)!r} is a local "
            f"folder: drop {given}."
        )
    config = _read_config(directory / CONFIG_FILE)
    if classes is not None:
        overrides["classes"] = classes
    for key in ("architecture", "encoder_name", "encoder_weights"):
        if key in overrides:
            raise InvalidOptionError(
                f"from_pretrained cannot change {key!r}: the saved weights belong to "
                f"{config['architecture']}/{config['encoder_name']}. To reuse its encoder in "
                f"another architecture, pass the folder as encoder_weights to segcore.build."
            )
    activation = overrides.pop("activation") if callable(overrides.get("activation")) else None
    config.update(overrides)
    model = from_config(config, activation=activation)
    load_fitting(model, load_state_dict(directory / WEIGHTS_FILE), strict=strict,
                 what=f"weights in {directory}")
    return model.eval()


def encoder_state_from_folder(directory: str | os.PathLike[str],
                              encoder_name: str) -> tuple[dict[str, torch.Tensor], int]:
    """The encoder's tensors of a saved model (segcore's or SMP's folder) and the input
    channels it was saved with, for ``encoder_weights=<folder>`` in another architecture.

    Raises ``WeightsFileError`` when the folder's encoder is another one.
    """
    from segcore.errors import WeightsFileError
    from segcore.factory import get_encoder_spec
    from segcore.weights import load_state_dict

    directory = Path(directory)
    config = _read_config(directory / CONFIG_FILE)
    saved = config["encoder_name"]
    if get_encoder_spec(saved).name != get_encoder_spec(encoder_name).name:
        raise WeightsFileError(
            f"{str(directory)!r} holds a model with encoder {saved!r}; its weights cannot "
            f"initialise encoder {encoder_name!r}. Build with encoder={saved!r}, or pass a "
            f"weights file for {encoder_name!r}."
        )
    prefix = "encoder."
    state = {key[len(prefix):]: value
             for key, value in load_state_dict(directory / WEIGHTS_FILE).items()
             if key.startswith(prefix)}
    if not state:
        raise WeightsFileError(
            f"{str(directory / WEIGHTS_FILE)!r} has no 'encoder.*' tensors: it is not the "
            f"weights of a whole segmentation model."
        )
    return state, int(config.get("in_channels", 3))


# -- input checks (eager mode only; shapes and dtypes, never tensor values) -------------------
#: dtypes that autocast runs in; an input in one of them may differ from the parameters' dtype
#: while autocast is on for its device
_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
#: the largest size the smallest-input search tries; a failure of a larger input is not blamed
#: on its size
_PROBE_LIMIT = 512
_BATCHNORM_ONE_VALUE = "Expected more than 1 value per channel when training"


def _conversion(dtype: torch.dtype) -> str:
    """The tensor method that converts to ``dtype``: ``x.float()``, ``x.half()``..."""
    methods = {torch.float32: "x.float()", torch.float64: "x.double()",
               torch.float16: "x.half()", torch.bfloat16: "x.bfloat16()"}
    return methods.get(dtype, f"x.to({dtype})")


def _model_conversion(dtype: torch.dtype) -> str:
    methods = {torch.float32: "model.float()", torch.float64: "model.double()",
               torch.float16: "model.half()", torch.bfloat16: "model.bfloat16()"}
    return methods.get(dtype, f"model.to({dtype})")


def _autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except (RuntimeError, TypeError, ValueError):  # a device type autocast does not know
        return False


def _check_input_dtype(model: nn.Module, x: torch.Tensor) -> None:
    """Raise ``InputTypeError`` unless ``x`` has the dtype of the model's first parameter.

    A float16/bfloat16/float32 input may differ from the parameters while autocast is on for
    the input's device (autocast casts both).
    """
    parameter = next(model.parameters(), None)
    if parameter is None or x.dtype == parameter.dtype:
        return
    expected, actual = parameter.dtype, x.dtype
    if (actual in _AUTOCAST_DTYPES and expected in _AUTOCAST_DTYPES
            and _autocast_enabled(x.device.type)):
        return
    raise InputTypeError(_dtype_message(actual, expected, x.device.type))


def _dtype_message(actual: torch.dtype, expected: torch.dtype, device_type: str) -> str:
    name = str(expected).removeprefix("torch.")
    head = (f"the input is {str(actual).removeprefix('torch.')} but the model computes in {name} "
            f"(the dtype of its parameters).")
    convert = _conversion(expected)
    preprocessing = ("segcore.get_preprocessing_fn(encoder_name) scales and normalises images "
                     "as the encoder's weights expect")
    if actual == torch.uint8:
        return (f"{head} An 8-bit image must be converted and scaled: {convert} / 255, then "
                f"normalised ({preprocessing}).")
    if actual == torch.bool:
        return f"{head} Convert the boolean tensor with {convert}."
    if actual.is_complex:
        return (f"{head} The model takes real values: use x.real or x.abs(), then {convert}.")
    if not actual.is_floating_point:
        return (f"{head} Convert integer images with {convert} and scale them to the range the "
                f"weights expect (x.float() / 65535 for 16-bit images; {preprocessing}).")
    if actual == torch.float64 or not expected.is_floating_point:
        return (f"{head} Convert the input with {convert}, or the model with "
                f"{_model_conversion(actual)}.")
    return (f"{head} Convert the input with {convert}, convert the model with "
            f"{_model_conversion(actual)}, or run it under mixed precision with "
            f"torch.autocast({device_type!r}, dtype={actual}).")


def _not_a_tensor_message(x: object, in_channels: int) -> str:
    wanted = f"a torch.Tensor of shape (N, {in_channels}, H, W)"
    kind = type(x).__name__
    shape = getattr(x, "shape", None)
    if type(x).__module__ == "numpy" and shape is not None:
        return (f"expected {wanted}, got a numpy array of shape {tuple(shape)} and dtype "
                f"{getattr(x, 'dtype', '?')}. Convert it with "
                f"{_numpy_conversion(tuple(shape), str(getattr(x, 'dtype', '')), in_channels)}.")
    if x is None:
        return f"expected {wanted}, got None."
    if isinstance(x, str | bytes | os.PathLike):
        return (f"expected {wanted}, got a {kind} ({x!r}): load the image first (e.g. "
                f"numpy.asarray(PIL.Image.open(path))), then convert it with "
                f"torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255.")
    if isinstance(x, list | tuple):
        return (f"expected {wanted}, got a {kind} of {len(x)} item(s). Stack (C, H, W) image "
                f"tensors into a batch with torch.stack(images), or convert an array with "
                f"torch.as_tensor(...).")
    return (f"expected {wanted}, got {kind}. Convert it to a tensor (torch.as_tensor, or "
            f"torch.from_numpy(numpy.asarray(image)).permute(2, 0, 1).unsqueeze(0) for an "
            f"(H, W, C) image).")


def _numpy_conversion(shape: tuple[int, ...], dtype: str, in_channels: int) -> str:
    """The expression that turns a numpy array of ``shape`` into an ``(N, C, H, W)`` tensor."""
    code = "torch.from_numpy(array)"
    if len(shape) == 3 and shape[-1] == in_channels:
        code += ".permute(2, 0, 1).unsqueeze(0)"
    elif len(shape) == 3 and shape[0] == in_channels:
        code += ".unsqueeze(0)"
    elif len(shape) == 4 and shape[-1] == in_channels and shape[1] != in_channels:
        code += ".permute(0, 3, 1, 2)"
    elif len(shape) == 2 and in_channels == 1:
        code += "[None, None]"
    elif len(shape) != 4:
        code += f" reshaped to (N, {in_channels}, H, W)"
    if dtype == "uint8":
        code += ".float() / 255"
    elif dtype != "float32":
        code += ".float()"
    return code


def _wrong_rank_message(shape: tuple[int, ...], in_channels: int) -> str:
    head = (f"expected a 4D tensor (N, C, H, W) with C = in_channels = {in_channels}, got a "
            f"{len(shape)}D tensor of shape {shape}.")
    if len(shape) == 3 and shape[0] == in_channels:
        return (f"{head} It looks like one (C, H, W) image: add a batch dimension with "
                f"x.unsqueeze(0).")
    if len(shape) == 3 and shape[-1] == in_channels:
        return (f"{head} It looks like one channels-last (H, W, C) image: use "
                f"x.permute(2, 0, 1).unsqueeze(0).")
    if len(shape) == 3 and in_channels == 1:
        return (f"{head} It looks like a batch of single-channel (N, H, W) images: add the "
                f"channel dimension with x.unsqueeze(1).")
    if len(shape) == 2 and in_channels == 1:
        return f"{head} It looks like one (H, W) image: use x[None, None]."
    if len(shape) == 2:
        return (f"{head} A 2D (H, W) image has one channel; the model takes {in_channels}: "
                f"build it with in_channels=1 (then use x[None, None]), or give it "
                f"{in_channels}-channel images.")
    if len(shape) == 5 and shape[0] == 1 and shape[2] == in_channels:
        return f"{head} Remove the extra leading dimension with x.squeeze(0)."
    if len(shape) == 5 and shape[2] == in_channels:
        return (f"{head} For a (N, T, C, H, W) stack of frames or slices, fold T into the batch "
                f"with x.flatten(0, 1) (the model is 2D).")
    if len(shape) == 5 and shape[1] == in_channels:
        return (f"{head} The model is 2D: for a (N, C, D, H, W) volume, process its slices as a "
                f"batch with x.permute(0, 2, 1, 3, 4).flatten(0, 1).")
    return f"{head} Reshape the input to (N, {in_channels}, H, W)."


def _wrong_channels_message(shape: tuple[int, ...], in_channels: int) -> str:
    message = (f"the model takes {in_channels} input channel(s) (in_channels={in_channels}), got "
               f"{shape[1]} (input shape {shape}; expected (N, {in_channels}, H, W)).")
    if shape[-1] == in_channels:
        return (f"{message} The input looks channels-last (N, H, W, C): use "
                f"x.permute(0, 3, 1, 2).")
    return (f"{message} Build the model with in_channels={shape[1]}, or convert the images to "
            f"{in_channels} channel(s).")


def _effective_size(model: SegmentationModel, height: int, width: int) -> int:
    """The smaller side of the input as the layers see it (after padding, when it is on)."""
    side = min(height, width)
    unit = model.input_divisor()
    if model.pad_inputs and unit > 1:
        return _round_up(side, unit)
    return side


def _too_small_message(model: SegmentationModel, height: int, width: int, smallest: int) -> str:
    unit = model.input_divisor()
    padded = model.pad_inputs and unit > 1
    least = smallest - unit + 1 if padded else smallest
    how = (f" (inputs are padded to multiples of {unit}, so {least} pads to {smallest})"
           if padded and least != smallest else "")
    return (
        f"{getattr(model, 'name', type(model).__name__)}: a {height}x{width} input is too small; "
        f"the smallest height and width this model can take are {least}x{least}{how}: its "
        f"strided, pooling or unpadded layers leave no pixels below that. Resize or pad the "
        f"images to at least {least}x{least}."
    )


def _explain_forward_failure(model: SegmentationModel, x: torch.Tensor, error: Exception) -> None:
    """Raise ``InputShapeError`` when ``error`` came from the size of ``x``; else return.

    Called only in eager mode, after a forward pass failed.
    """
    if isinstance(error, torch.OutOfMemoryError) or x.dim() != 4:
        return
    batch, height, width = int(x.shape[0]), int(x.shape[-2]), int(x.shape[-1])
    if model.training and _BATCHNORM_ONE_VALUE in str(error):
        stride = int(model.encoder.output_stride)
        deepest = f"{-(-height // stride)}x{-(-width // stride)}"
        raise InputShapeError(
            f"in training mode, batch normalisation needs more than one value per channel, but "
            f"a batch of {batch} image(s) of {height}x{width} leaves a single one in a layer "
            f"(the deepest features are {deepest} at stride {stride}; pooling branches are "
            f"1x1). Train with at least 2 images per batch (DataLoader(..., drop_last=True) "
            f"avoids a last batch of one), use larger images, or call model.eval() for "
            f"inference."
        ) from error
    if min(height, width) >= _PROBE_LIMIT:
        return
    smallest = _smallest_input_size(model)
    if smallest is not None and _effective_size(model, height, width) < smallest:
        raise InputShapeError(_too_small_message(model, height, width, smallest)) from error


def _smallest_input_size(model: SegmentationModel) -> int | None:
    """The smallest square size (a multiple of the output stride when the architecture needs
    it) that goes through the model, or ``None`` when none up to ``_PROBE_LIMIT`` does.

    Found once, after a forward pass failed, by running the model in eval mode without
    gradients on growing zero inputs (normalisation statistics do not change; forward hooks
    see these calls), then cached on the model for ``check_input_shape``.
    """
    cached = model.__dict__.get("_smallest_input_size", ...)
    if cached is not ...:
        return cached
    unit = model.input_divisor()
    modes = [(module, module.training) for module in model.modules()]
    try:
        for module, _ in modes:
            module.training = False
        with torch.no_grad():
            smallest = _search_smallest(lambda k: _runs(model, unit * k), _PROBE_LIMIT // unit)
    finally:
        for module, mode in modes:
            module.training = mode
    result = None if smallest is None else unit * smallest
    model.__dict__["_smallest_input_size"] = result
    return result


def _search_smallest(runs: Callable[[int], bool], limit: int) -> int | None:
    """The smallest ``k`` in ``1..limit`` with ``runs(k)``, assuming larger ``k`` also run.

    Doubles ``k`` until it runs, tries one less (strided networks mostly need a power of
    two), then bisects.
    """
    low, high = 0, 1  # runs(low) is False (or low is 0); runs(high) is to be found True
    while not runs(high):
        if high >= limit:
            return None
        low, high = high, min(2 * high, limit)
    if high - low > 1:
        if not runs(high - 1):
            return high
        high -= 1
    while high - low > 1:
        middle = (low + high) // 2
        if runs(middle):
            high = middle
        else:
            low = middle
    return high


def _runs(model: SegmentationModel, size: int) -> bool:
    """Whether a ``size`` x ``size`` input goes through encoder, decoder and head."""
    parameter = next(model.parameters(), None)
    x = torch.zeros(
        1, model._in_channels, size, size,
        dtype=parameter.dtype if parameter is not None else None,
        device=parameter.device if parameter is not None else None,
    )
    try:
        model.segmentation_head(model.decoder(model.encoder(x)))
    except Exception:  # any failure means "not at this size"
        return False
    return True


def _pad_to_multiple(x: torch.Tensor, divisor: int) -> torch.Tensor:
    """Zero-pad the bottom and right of ``x`` so height and width are multiples of ``divisor``."""
    pad_height = (divisor - x.shape[-2] % divisor) % divisor
    pad_width = (divisor - x.shape[-1] % divisor) % divisor
    return torch.nn.functional.pad(x, (0, pad_width, 0, pad_height))


def _crop_to_input(
    masks: torch.Tensor, height: int, width: int, padded_height: int, padded_width: int
) -> torch.Tensor:
    """The part of ``masks`` that covers the unpadded input.

    The mask may have another scale than the input (FPN at depth 4 gives 2H x 2W, as in SMP):
    the crop keeps that scale.
    """
    keep_height = masks.shape[-2] * height // padded_height
    keep_width = masks.shape[-1] * width // padded_width
    return masks[..., :keep_height, :keep_width]
