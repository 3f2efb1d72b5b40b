"""The configuration of a training run: attrs classes, read from one TOML file or a dict.

A run is described by sections (``[data]``, ``[augment]``, ``[model]``, ``[loss]``,
``[optimizer]``, ``[schedule]``, ``[train]``, ``[output]``); only ``data.root`` is required,
every other key has a default. ``load_config`` reads a file, ``RunConfig.from_dict`` a dict;
an unknown section or key raises ``UnknownOptionError`` with a did-you-mean, a wrong type or
value ``InvalidOptionError`` naming the key. ``apply_overrides`` applies ``--set`` strings.
TOML has no null: ``"none"`` stands for "not set" where a key allows it. The resolved config is
written back with ``dump_config`` (``RUN/config.toml``) and reads back to an equal object.

Example::

    config = load_config("train.toml", overrides=["model.encoder=resnet34", "train.epochs=5"])
    config.train.epochs                     # 5
    dump_config(config, "runs/a/config.toml")
    assert load_config("runs/a/config.toml") == config

``config_reference_markdown()`` renders every key (type, default, help) for docs/training.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from segcore.errors import InvalidOptionError, UnknownOptionError, did_you_mean
from segcore_train.augment import CROP_MODES, AugmentConfig
from segcore_train.layout import SPLIT_SEED, VAL_FRACTION

__all__ = [
    "AUGMENT_HELP",
    "DataConfig",
    "LossConfig",
    "LossTerm",
    "ModelConfig",
    "OptimizerConfig",
    "OutputConfig",
    "RunConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "config_reference_markdown",
    "dump_config",
    "load_config",
    "to_toml",
]

_NONE = "none"  # how TOML (which has no null) spells "not set"


# -- kinds: check + normalise one value, and describe it for the docs -----------------------
@attrs.frozen
class _Kind:
    """How a key's value is checked: ``check(value, key)`` returns the normalised value."""

    name: str
    check: Callable[[Any, str], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(minimum: int | None = None) -> _Kind:
    words = {None: "integer", 0: "integer >= 0", 1: "positive integer"}
    name = words.get(minimum, f"integer >= {minimum}")

    def check(value: Any, key: str) -> int:
        if not _is_int(value) or (minimum is not None and value < minimum):
            raise InvalidOptionError(f"{key} must be a {name}, got {value!r}")
        return int(value)

    return _Kind(name, check)


def _float(minimum: float | None = None, maximum: float | None = None,
           exclusive_minimum: bool = False) -> _Kind:
    if minimum is None and maximum is None:
        name = "number"
    elif maximum is None:
        name = f"number {'>' if exclusive_minimum else '>='} {minimum:g}"
    else:
        name = f"number in {'(' if exclusive_minimum else '['}{minimum:g}, {maximum:g}]"

    def check(value: Any, key: str) -> float:
        ok = _is_number(value) and math.isfinite(value)
        if ok and minimum is not None:
            ok = value > minimum if exclusive_minimum else value >= minimum
        if ok and maximum is not None:
            ok = value <= maximum
        if not ok:
            raise InvalidOptionError(f"{key} must be a {name}, got {value!r}")
        return float(value)

    return _Kind(name, check)


def _bool() -> _Kind:
    def check(value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise InvalidOptionError(f"{key} must be true or false, got {value!r}")
        return value

    return _Kind("boolean", check)


def _string() -> _Kind:
    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise InvalidOptionError(f"{key} must be a non-empty string, got {value!r}")
        return value

    return _Kind("string", check)


def _path() -> _Kind:
    def check(value: Any, key: str) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise InvalidOptionError(f"{key} must be a path (a non-empty string), got {value!r}")
        return value

    return _Kind("path", check)


def _choice(*choices: str) -> _Kind:
    def check(value: Any, key: str) -> str:
        if value not in choices:
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            raise InvalidOptionError(
                f"{key} must be one of {', '.join(map(repr, choices))}, got {value!r}.{hint}")
        return value

    return _Kind(" \\| ".join(f'"{choice}"' for choice in choices), check)


def _float_pair(minimum: float, maximum: float) -> _Kind:
    name = f"[a, b], numbers in [{minimum:g}, {maximum:g})"

    def check(value: Any, key: str) -> tuple[float, float]:
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(_is_number(v) and minimum <= v < maximum for v in value)):
            raise InvalidOptionError(f"{key} must be {name}, got {value!r}")
        return float(value[0]), float(value[1])

    return _Kind(name, check)


def _table() -> _Kind:
    def check(value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise InvalidOptionError(f"{key} must be a table (key = value pairs), got {value!r}")
        return _freeze_table(value)

    return _Kind("table", check)


def _optional(kind: _Kind) -> _Kind:
    def check(value: Any, key: str) -> Any:
        if value is None or (isinstance(value, str) and value.lower() == _NONE):
            return None
        return kind.check(value, key)

    return _Kind(f'{kind.name} or "none"', check)


def _freeze_table(value: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict copy (nested tables too; tuples become lists, as TOML reads them)."""
    def plain(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {str(k): plain(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [plain(v) for v in item]
        return item

    return plain(value)


def _option(default: Any, kind: _Kind, help: str) -> Any:
    """An attrs field with its kind and help text (``config_reference_markdown`` reads them).

    ``default`` is immutable; tables use ``attrs.field(factory=dict, ...)``.
    """
    return attrs.field(default=default, metadata={"kind": kind, "help": help})


def _table_metadata(help: str) -> dict[str, Any]:
    """The metadata of a table (``dict``) key, empty by default."""
    return {"kind": _table(), "help": help}


def _required(kind: _Kind, help: str) -> Any:
    return attrs.field(metadata={"kind": kind, "help": help, "required": True})


class _Section:
    """Base of the section classes: checks and normalises every field after construction."""

    SECTION = ""

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(type(self)):
            kind: _Kind | None = field.metadata.get("kind")
            if kind is not None:
                value = kind.check(getattr(self, field.name), f"{self.SECTION}.{field.name}")
                object.__setattr__(self, field.name, value)
        self._check()

    def _check(self) -> None:
        """Checks across keys (overridden by sections that need them)."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Any:
        _check_keys(values, [f.name for f in attrs.fields(cls)], f"[{cls.SECTION}]")
        missing = [f.name for f in attrs.fields(cls)
                   if f.metadata.get("required") and f.name not in values]
        if missing:
            field = attrs.fields_dict(cls)[missing[0]]
            raise InvalidOptionError(
                f"{cls.SECTION}.{missing[0]} is required ({field.metadata['help']}); set it in "
                f"the [{cls.SECTION}] section or with --set {cls.SECTION}.{missing[0]}=...")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in attrs.fields(type(self))}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    return value


def _check_keys(values: Any, valid: Sequence[str], where: str, noun: str = "key") -> None:
    if not isinstance(values, Mapping):
        raise InvalidOptionError(f"{where} must be a table (key = value pairs), got {values!r}")
    for key in values:
        if key not in valid:
            raise UnknownOptionError(
                f"unknown {noun} {key!r} in {where}.{did_you_mean(str(key), valid)} Valid "
                f"{noun}s: {', '.join(valid)}")


# -- the sections -----------------------------------------------------------------------------
@attrs.frozen
class DataConfig(_Section):
    """``[data]``: the dataset folder and how it is read and split."""

    SECTION = "data"
    root: str = _required(_path(), "the folder holding images/ and masks/ (relative paths "
                                   "are taken from the current directory)")
    classes: int | None = _option(None, _optional(_int(1)),
                                  "classes including background (multi-label: labels); "
                                  "none: the number of names in ROOT/classes.txt")
    multilabel: bool = _option(False, _bool(), "masks are one binary mask per label "
                                               "(sigmoid outputs) rather than class indices")
    ignore_index: int | None = _option(None, _optional(_int()),
                                       "a mask value that the loss and the metrics ignore "
                                       "(e.g. 255)")
    channels: int | None = _option(None, _optional(_int(1)),
                                   "convert every image to this many channels; none: all "
                                   "images must have the same number")
    splits: str | None = _option(None, _optional(_path()),
                                 "a splits JSON or a folder of SPLIT.txt files; none: "
                                 "ROOT/splits.json if present, else a random split")
    val_fraction: float = _option(VAL_FRACTION, _float(0.0, 1.0),
                                  "fraction of the images for validation when there is no "
                                  "splits file")
    seed: int = _option(SPLIT_SEED, _int(), "seed of that random split")
    val_resize: bool = _option(True, _bool(),
                               "bring validation images to augment.size (so that images of "
                               "different sizes batch): a resize, or the centre crop with "
                               "augment.crop = \"random\"; false: each keeps its size and "
                               "validation runs one image at a time")


@attrs.frozen
class ModelConfig(_Section):
    """``[model]``: what `segcore.build` makes."""

    SECTION = "model"
    architecture: str = _option("unet", _string(), "architecture name (segcore list "
                                                   "architectures)")
    encoder: str = _option("resnet18", _string(), "encoder name (segcore list encoders), or "
                                                  "tu-NAME for a timm model")
    encoder_weights: str | None = _option(None, _optional(_string()),
                                          "pretrained encoder weights: a tag such as "
                                          "\"imagenet\" or a file; none: random "
                                          "initialisation. Pretrained weights also set the "
                                          "input normalisation")
    options: dict[str, Any] = attrs.field(factory=dict, metadata=_table_metadata(
        "other arguments of segcore.build, e.g. "
        "{encoder_depth = 4, decoder_channels = [128, 64, 32, 16]}"))

    def _check(self) -> None:
        taken = {"architecture", "encoder", "encoder_name", "encoder_weights", "classes",
                 "in_channels"}
        clash = sorted(taken & set(self.options))
        if clash:
            raise InvalidOptionError(
                f"model.options must not set {', '.join(clash)}: the encoder and weights have "
                "their own keys, classes and in_channels come from [data]")


@attrs.frozen
class LossTerm:
    """One term of a weighted-sum loss."""

    name: str
    weight: float = 1.0
    options: dict[str, Any] = attrs.field(factory=dict)


def _loss_terms() -> _Kind:
    def check(value: Any, key: str) -> tuple[LossTerm, ...]:
        if not isinstance(value, (list, tuple)):
            raise InvalidOptionError(
                f"{key} must be a list of tables {{name, weight, options}}, got {value!r}")
        terms = []
        for index, term in enumerate(value):
            where = f"{key}[{index}]"
            if isinstance(term, LossTerm):
                term = {"name": term.name, "weight": term.weight, "options": term.options}
            _check_keys(term, ["name", "weight", "options"], where)
            if "name" not in term:
                raise InvalidOptionError(f"{where} needs a name (segcore list losses)")
            terms.append(LossTerm(
                name=_string().check(term["name"], f"{where}.name"),
                weight=_float(0.0).check(term.get("weight", 1.0), f"{where}.weight"),
                options=_table().check(term.get("options", {}), f"{where}.options")))
        return tuple(terms)

    return _Kind("list of {name, weight, options}", check)


@attrs.frozen
class LossConfig(_Section):
    """``[loss]``: one loss by name, or a weighted sum of terms."""

    SECTION = "loss"
    name: str = _option("dice", _string(), "loss name (segcore list losses); its mode "
                                           "(multiclass/multilabel) and ignore_index are "
                                           "set from [data]")
    options: dict[str, Any] = attrs.field(factory=dict, metadata=_table_metadata(
        "other arguments of that loss, e.g. {smooth = 1.0}"))
    terms: tuple[LossTerm, ...] = _option((), _loss_terms(),
                                          "a weighted sum instead of name: [{name = \"dice\", "
                                          "weight = 1.0}, {name = \"soft_ce\", weight = 0.5, "
                                          "options = {smooth_factor = 0.1}}]")


@attrs.frozen
class OptimizerConfig(_Section):
    """``[optimizer]``: AdamW (default) or SGD with momentum."""

    SECTION = "optimizer"
    name: str = _option("adamw", _choice("adamw", "sgd"), "the optimizer")
    lr: float = _option(1e-3, _float(0.0, exclusive_minimum=True),
                        "peak learning rate (after warm-up)")
    weight_decay: float = _option(1e-4, _float(0.0), "decoupled weight decay (AdamW); L2 "
                                                     "penalty (SGD)")
    betas: tuple[float, float] = _option((0.9, 0.999), _float_pair(0.0, 1.0),
                                         "AdamW's beta1 and beta2")
    eps: float = _option(1e-8, _float(0.0, exclusive_minimum=True), "AdamW's epsilon")
    momentum: float = _option(0.9, _float(0.0, 1.0), "SGD's momentum")


@attrs.frozen
class ScheduleConfig(_Section):
    """``[schedule]``: learning rate per optimizer step: linear warm-up, then cosine."""

    SECTION = "schedule"
    name: str = _option("cosine", _choice("cosine", "constant"),
                        "after warm-up: cosine decay to min_lr, or constant")
    warmup_epochs: float = _option(1.0, _float(0.0), "linear warm-up from 0, in epochs "
                                                     "(fractions allowed)")
    warmup_steps: int | None = _option(None, _optional(_int(0)),
                                       "warm-up in optimizer steps; replaces warmup_epochs")
    min_lr: float = _option(1e-6, _float(0.0), "learning rate at the end of the cosine")


@attrs.frozen
class TrainConfig(_Section):
    """``[train]``: the loop."""

    SECTION = "train"
    epochs: int = _option(10, _int(1), "passes over the training split")
    batch_size: int = _option(8, _int(1), "images per step and per process (under torchrun "
                                          "the global batch is batch_size x processes)")
    accumulate: int = _option(1, _int(1), "gradient accumulation: optimizer step every N "
                                          "batches")
    clip_grad_norm: float | None = _option(None, _optional(_float(0.0, exclusive_minimum=True)),
                                           "clip the gradients' total norm to this; none: "
                                           "no clipping")
    amp: str = _option("no", _choice("no", "bf16", "fp16", "auto"),
                       "mixed precision (autocast); fp16 needs CUDA and uses a GradScaler, "
                       "bf16 works on CPU too; auto: bf16 where the device computes it "
                       "natively (CPUs with AVX512-BF16 or AMX, recent GPUs), else fp16 on "
                       "CUDA and no on CPU")
    channels_last: bool = _option(True, _bool(), "NHWC memory format for the model and "
                                                 "inputs (faster convolutions)")
    compile: bool = _option(False, _bool(), "torch.compile the model")
    keep_freed_memory: bool = _option(True, _bool(), "on CPU, glibc's malloc keeps freed "
                                                     "memory for the next step instead of "
                                                     "returning it to the system (no page "
                                                     "faults per step; resident memory stays "
                                                     "at its peak; segcore_train.host)")
    workers: int = _option(2, _int(0), "data loading processes per training process (0: "
                                       "load in the main process)")
    seed: int = _option(0, _int(), "seed of the initialisation, the shuffling and the "
                                   "augmentation")
    deterministic: bool = _option(False, _bool(), "deterministic algorithms only (slower); "
                                                  "with workers = 0 a resumed run repeats an "
                                                  "uninterrupted one bit for bit on CPU")
    device: str = _option("auto", _choice("auto", "cpu", "cuda"),
                          "auto: CUDA when available (the local rank's GPU under torchrun)")
    best_metric: str = _option("miou", _choice("miou", "mf1", "loss"),
                               "validation metric that chooses best.pt (loss: lowest wins)")
    val_every: int = _option(1, _int(1), "validate every N epochs (and after the last)")
    log_every_steps: int = _option(50, _int(1), "progress and log lines every N steps (the "
                                                "only host synchronisations of the loop)")
    checkpoint_every_steps: int = _option(0, _int(0), "also write last.pt every N optimizer "
                                                      "steps within an epoch; 0: at the end "
                                                      "of each epoch only")
    sync_batchnorm: bool = _option(True, _bool(), "under torchrun, BatchNorm statistics over "
                                                  "the global batch (SyncBatchNorm)")
    train_metrics: bool = _option(True, _bool(), "count IoU/F1 on the training batches too "
                                                 "(on the device)")


@attrs.frozen
class OutputConfig(_Section):
    """``[output]``: the run folder."""

    SECTION = "output"
    run_dir: str | None = _option(None, _optional(_path()),
                                  "the run folder; none: runs/ARCHITECTURE-ENCODER-TIME")
    overwrite: bool = _option(False, _bool(), "start over in a run folder that already "
                                              "holds a run (otherwise: an error; resume "
                                              "with --resume)")
    plots: bool = _option(True, _bool(), "write curves.png, predictions.png and "
                                         "confusion.png after each validation")
    plot_images: int = _option(4, _int(0), "validation images shown in predictions.png")


#: The help of ``[augment]``'s keys (``AugmentConfig`` is a dataclass of segcore_train.augment).
AUGMENT_HELP = {
    "size": "training crop [height, width] (or one int); none keeps each image's size",
    "crop": "how an image becomes size: \"resized\" (RandomResizedCrop: a random area, "
            "resized) or \"random\" (RandomCrop at the image's own scale, padded where "
            "smaller; validation then takes the centre crop)",
    "crop_scale": "RandomResizedCrop's area fraction [low, high]",
    "crop_ratio": "RandomResizedCrop's aspect ratio [low, high]",
    "hflip": "probability of a horizontal flip",
    "vflip": "probability of a vertical flip",
    "rotate90": "probability of a quarter turn (90, 180 or 270 degrees; 180 only for an image "
                "that is not square)",
    "rotation": "largest rotation, degrees either way",
    "translate": "largest shift, as a fraction of the size",
    "scale": "zoom range [low, high] of the affine step",
    "brightness": "ColorJitter brightness",
    "contrast": "ColorJitter contrast",
    "saturation": "ColorJitter saturation (3-channel images)",
    "hue": "ColorJitter hue",
    "enabled": "false turns every random step off (the crop becomes a resize to size, or the "
               "centre crop with crop = \"random\")",
}
_AUGMENT_OPTIONAL = {"size"}

_SECTIONS: dict[str, type[_Section]] = {
    "data": DataConfig, "model": ModelConfig, "loss": LossConfig,
    "optimizer": OptimizerConfig, "schedule": ScheduleConfig, "train": TrainConfig,
    "output": OutputConfig,
}
SECTION_ORDER = ("data", "augment", "model", "loss", "optimizer", "schedule", "train", "output")


def _augment_from_dict(values: Mapping[str, Any]) -> AugmentConfig:
    names = [field.name for field in dataclasses.fields(AugmentConfig)]
    _check_keys(values, names, "[augment]")
    given = dict(values)
    for key in _AUGMENT_OPTIONAL:
        if isinstance(given.get(key), str) and given[key].lower() == _NONE:
            given[key] = None
    for key, value in given.items():  # the dataclass's messages do not name the section
        try:
            AugmentConfig(**{key: value})
        except InvalidOptionError as error:
            raise InvalidOptionError(f"augment.{key}: {error}") from None
        except (TypeError, ValueError) as error:
            raise InvalidOptionError(f"augment.{key} has a wrong value {value!r} ({error})"
                                     ) from None
    return AugmentConfig(**given)


@attrs.frozen
class RunConfig:
    """Everything a training run needs; ``RunConfig.from_dict`` / ``load_config`` build it.

    Example::

        config = RunConfig.from_dict({"data": {"root": "data", "classes": 4},
                                      "train": {"epochs": 3}})
        config = attrs.evolve(config, train=attrs.evolve(config.train, batch_size=16))
    """

    data: DataConfig
    augment: AugmentConfig = attrs.field(factory=AugmentConfig)
    model: ModelConfig = attrs.field(factory=ModelConfig)
    loss: LossConfig = attrs.field(factory=LossConfig)
    optimizer: OptimizerConfig = attrs.field(factory=OptimizerConfig)
    schedule: ScheduleConfig = attrs.field(factory=ScheduleConfig)
    train: TrainConfig = attrs.field(factory=TrainConfig)
    output: OutputConfig = attrs.field(factory=OutputConfig)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from ``{section: {key: value}}`` (what ``tomllib`` returns)."""
        _check_keys(values, list(SECTION_ORDER), "the configuration", noun="section")
        sections: dict[str, Any] = {}
        for name in SECTION_ORDER:
            given = values.get(name, {})
            if not isinstance(given, Mapping):
                raise InvalidOptionError(
                    f"[{name}] must be a table (a section), got {given!r}")
            if name == "augment":
                sections[name] = _augment_from_dict(given)
            elif name == "data" and name not in values:
                raise InvalidOptionError(
                    "the configuration needs a [data] section with root = \"DIR\" (the folder "
                    "holding images/ and masks/), or --set data.root=DIR")
            else:
                sections[name] = _SECTIONS[name].from_dict(given)
        return cls(**sections)

    def to_dict(self) -> dict[str, Any]:
        """``{section: {key: value}}`` with every key (``None`` where not set)."""
        result: dict[str, Any] = {}
        for name in SECTION_ORDER:
            section = getattr(self, name)
            if name == "augment":
                result[name] = {f.name: _plain(getattr(section, f.name))
                                for f in dataclasses.fields(section)}
            else:
                result[name] = section.to_dict()
        return result


# -- files, overrides -------------------------------------------------------------------------
def load_config(source: str | os.PathLike[str] | Mapping[str, Any],
                overrides: Iterable[str] = ()) -> RunConfig:
    """The run configuration of a TOML file (or a dict), with ``--set`` overrides applied.

    Raises ``InvalidOptionError`` for a missing or malformed file (with the line), a wrong
    value; ``UnknownOptionError`` for an unknown section or key.
    """
    if isinstance(source, Mapping):
        values = _freeze_table(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidOptionError(f"the config file {path} does not exist (or is not a file)")
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise InvalidOptionError(f"{path} is not valid TOML: {error}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidOptionError(f"cannot read the config file {path}: {error}") from None
    values = apply_overrides(values, overrides)
    return RunConfig.from_dict(values)


_OVERRIDE = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+)\s*=(.*)$", re.DOTALL)


def apply_overrides(config_dict: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``config_dict`` with ``"section.key=value"`` strings applied.

    The value is read as TOML (``3``, ``true``, ``[64, 32]``, ``{a = 1}``, ``"text"``) and
    otherwise taken as a string (``model.encoder=resnet34``). Deeper keys create tables
    (``model.options.encoder_depth=4``).

    Example: ``apply_overrides({}, ["train.epochs=3"]) == {"train": {"epochs": 3}}``.
    """
    result = _freeze_table(config_dict)
    for override in overrides:
        match = _OVERRIDE.match(override)
        if match is None:
            raise InvalidOptionError(
                f"--set {override!r} is not SECTION.KEY=VALUE (e.g. --set train.epochs=20, "
                "--set model.encoder=resnet34)")
        path, text = match.group(1).split("."), match.group(2).strip()
        value = _parse_value(text)
        table = result
        for depth, key in enumerate(path[:-1]):
            inner = table.setdefault(key, {})
            if not isinstance(inner, dict):
                raise InvalidOptionError(
                    f"--set {override!r}: {'.'.join(path[:depth + 1])} is a value, not a table")
            table = inner
        table[path[-1]] = value
    return result


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def to_toml(values: Mapping[str, Any]) -> str:
    """TOML text of ``{section: {key: value}}`` (``None`` written as ``"none"``)."""
    lines = []
    for section, table in values.items():
        if lines:
            lines.append("")
        lines.append(f"[{_key(section)}]")
        for key, value in table.items():
            lines.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_\-]+", key) else _string_literal(key)


def _string_literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=True).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if value is None:
        return f'"{_NONE}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string_literal(value)
    if isinstance(value, os.PathLike):
        return _string_literal(os.fspath(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + "}"
    if attrs.has(type(value)):
        return _value(_plain(value))
    raise InvalidOptionError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def dump_config(config: RunConfig, path: str | os.PathLike[str]) -> Path:
    """Write ``config`` as TOML to ``path`` (every key; ``load_config`` reads it back equal)."""
    path = Path(path)
    path.write_text(to_toml(config.to_dict()), encoding="utf-8")
    return path


# -- the reference --------------------------------------------------------------------------
def _default_text(value: Any) -> str:
    return f"`{_value(_plain(value))}`"


def config_reference_markdown() -> str:
    """Every section and key as Markdown tables: key, type, default, description."""
    out = []
    for name in SECTION_ORDER:
        out.append(f"### `[{name}]`")
        out.append("")
        if name == "augment":
            out.append("The training augmentation (`segcore_train.AugmentConfig`); validation "
                       "images are only resized and normalised.")
        else:
            doc = (_SECTIONS[name].__doc__ or "").strip().splitlines()[0]
            out.append(doc.split(": ", 1)[-1][:1].upper() + doc.split(": ", 1)[-1][1:])
        out.append("")
        out.append("| key | type | default | description |")
        out.append("|---|---|---|---|")
        if name == "augment":
            defaults = AugmentConfig()
            for field in dataclasses.fields(AugmentConfig):
                kind = _augment_kind(field.name, getattr(defaults, field.name))
                out.append(f"| `{field.name}` | {kind} | "
                           f"{_default_text(getattr(defaults, field.name))} | "
                           f"{AUGMENT_HELP[field.name]} |")
        else:
            for field in attrs.fields(_SECTIONS[name]):
                kind = field.metadata["kind"].name
                if field.metadata.get("required"):
                    default = "required"
                elif field.default is attrs.NOTHING:
                    default = "`[]`"
                elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                    default = _default_text(field.default.factory())
                else:
                    default = _default_text(field.default)
                out.append(f"| `{field.name}` | {kind} | {default} | "
                           f"{field.metadata['help']} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _augment_kind(name: str, default: Any) -> str:
    if name == "size":
        return '[height, width], integer or "none"'
    if name == "crop":
        return " \\| ".join(f'"{mode}"' for mode in CROP_MODES)
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, tuple):
        return "[low, high]"
    return "number"
