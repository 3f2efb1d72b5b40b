"""Augmentation and normalisation of image/mask pairs with ``torchvision.transforms.v2``.

The mask travels as a ``tv_tensors.Mask``, so every geometric step moves it with the image
using nearest-neighbour interpolation (class indices stay integers); colour steps touch the
image only. The default training set (``AugmentConfig()``):

* ``RandomResizedCrop`` to 256x256, scale 0.5..1, aspect ratio 3/4..4/3 (``crop = "random"``:
  a crop at the image's own scale instead, padded where the image is smaller);
* horizontal flip (p=0.5), no vertical flip, no quarter turns (``rotate90``);
* ``RandomAffine``: rotation within +-10 degrees, translation up to 5%, scale 0.9..1.1
  (uncovered pixels: image 0, mask ``ignore_index`` if set, else 0, the background);
* ``ColorJitter`` brightness 0.2, contrast 0.2, saturation 0.2 (1- and 3-channel images;
  saturation for 3 only; other channel counts skip it);
* normalisation by ``resolve_normalization`` (below).

Example::

    normalization = resolve_normalization("resnet34", "imagenet")
    transform = build_train_transform(AugmentConfig(size=128), normalization)
    image, mask = transform(image, mask)      # (C, H, W) float, (H, W) int64 -> same, 128x128
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from segcore.errors import InvalidOptionError, did_you_mean

#: ImageNet statistics, the fallback of ``resolve_normalization``.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


#: ``AugmentConfig.crop``'s choices.
CROP_MODES = ("resized", "random")


@dataclass(frozen=True)
class AugmentConfig:
    """Which training augmentations run, and how strongly; 0 (or ``None``) turns one off.

    Attributes:
        size: output ``(height, width)`` of the training crops (an int for a square);
            ``None`` keeps each image's size (then batches need equal-sized images).
        crop: how a training image becomes ``size``: ``"resized"`` (``RandomResizedCrop``: a
            random area, resized, so the scale changes) or ``"random"`` (``RandomCrop``: a
            window at a random place, at the image's own scale; an image smaller than
            ``size`` is padded: image 0, mask ``ignore_index`` if set, else 0). ``"random"``
            suits large images (satellite tiles, slides) that ``segcore evaluate`` and
            ``segcore predict`` will see at their own scale; validation then takes the centre
            crop instead of a resize (``data.val_resize``).
        crop_scale, crop_ratio: ``RandomResizedCrop``'s area fraction and aspect ratio.
        hflip, vflip: probabilities of a horizontal / vertical flip.
        rotate90: probability of a quarter turn: by 90, 180 or 270 degrees, one at random
            (exact, no interpolation; an image that is not square turns by 180 only, so
            that its size stays). With ``hflip = vflip = 0.5`` it gives all 8 symmetries
            of the square, for data without a preferred orientation (aerial, microscopy).
        rotation: largest rotation, in degrees either way.
        translate: largest shift, as a fraction of the size.
        scale: zoom range of the affine step.
        brightness, contrast, saturation, hue: ``ColorJitter``'s strengths.
        enabled: ``False`` turns every random step off (the crop becomes a resize to
            ``size``, or with ``crop = "random"`` the centre crop), for runs without
            augmentation.

    Example: ``AugmentConfig.from_dict({"size": 128, "vflip": 0.5, "hue": 0.05})``.
    """

    size: tuple[int, int] | None = (256, 256)
    crop: str = "resized"
    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    vflip: float = 0.0
    rotate90: float = 0.0
    rotation: float = 10.0
    translate: float = 0.05
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0
    enabled: bool = True

    def __post_init__(self) -> None:
        size = self.size
        if isinstance(size, int) and not isinstance(size, bool):
            size = (size, size)
        if size is not None:
            size = tuple(size)
            if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                         and v > 0 for v in size):
                raise InvalidOptionError(
                    f"size must be None, an int or (height, width) of positive ints, got "
                    f"{self.size!r}")
        object.__setattr__(self, "size", size)
        if self.crop not in CROP_MODES:
            hint = did_you_mean(self.crop, CROP_MODES) if isinstance(self.crop, str) else ""
            raise InvalidOptionError(
                f"crop must be one of {', '.join(map(repr, CROP_MODES))}, got "
                f"{self.crop!r}.{hint}")
        for name in ("crop_scale", "crop_ratio", "scale"):
            pair = tuple(float(v) for v in getattr(self, name))
            if len(pair) != 2 or not 0 < pair[0] <= pair[1]:
                raise InvalidOptionError(
                    f"{name} must be (low, high) with 0 < low <= high, got "
                    f"{getattr(self, name)!r}")
            object.__setattr__(self, name, pair)
        if self.crop_scale[1] > 1:
            raise InvalidOptionError(f"crop_scale must not exceed 1, got {self.crop_scale}")
        for name, high in (("hflip", 1.0), ("vflip", 1.0), ("rotate90", 1.0),
                           ("translate", 1.0),
                           ("brightness", None), ("contrast", None), ("saturation", None),
                           ("hue", 0.5), ("rotation", 180.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                    high is not None and value > high):
                bounds = f"0..{high:g}" if high is not None else ">= 0"
                raise InvalidOptionError(f"{name} must be a number in {bounds}, got {value!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AugmentConfig:
        """The defaults with ``values`` replacing some; an unknown key is an error."""
        names = [field.name for field in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                raise InvalidOptionError(
                    f"unknown augmentation setting {key!r}.{did_you_mean(key, names)} "
                    f"Settings: {', '.join(names)}")
        return cls(**values)


@dataclass(frozen=True)
class Normalization:
    """How a ``(C, H, W)`` image in [0, 1] is normalised for the model.

    The image is flipped to BGR when ``input_space == "BGR"``, mapped to ``input_range``, then
    ``(x - mean) / std`` per channel (``None`` skips that part). ``source`` says where the
    values come from.
    """

    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    input_space: str = "RGB"
    input_range: tuple[float, float] = (0.0, 1.0)
    source: str = ""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Normalise ``image`` of shape ``(C, H, W)`` or ``(N, C, H, W)``, values in [0, 1]."""
        axis = image.dim() - 3
        channels = image.shape[axis]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and len(values) != channels:
                raise InvalidOptionError(
                    f"the normalisation ({self.source or 'given'}) has {len(values)} {name} "
                    f"values but the image has {channels} channels")
        if self.input_space == "BGR":
            image = image.flip(axis)
        low, high = self.input_range
        if (low, high) != (0.0, 1.0):
            image = image * (high - low) + low
        shape = [1] * image.dim()
        shape[axis] = channels
        if self.mean is not None:
            image = image - torch.tensor(self.mean, dtype=image.dtype,
                                         device=image.device).view(shape)
        if self.std is not None:
            image = image / torch.tensor(self.std, dtype=image.dtype,
                                         device=image.device).view(shape)
        return image


def resolve_normalization(
    encoder: str | None = None,
    pretrained: str | None = None,
    *,
    statistics: tuple[Sequence[float], Sequence[float]] | None = None,
    channels: int = 3,
) -> Normalization:
    """The normalisation for a model: from the encoder's weights, the data, or ImageNet.

    Precedence: a pretrained encoder (``encoder`` and a weights tag ``pretrained``) uses its
    weights' values (``segcore.get_preprocessing_params``: mean, std, input space and
    range); otherwise ``statistics`` = ``(mean, std)`` of the dataset (``DataReport.mean`` /
    ``.std``) when given; otherwise ImageNet's mean and std. When the image has another
    number of channels than the values (3), a 1-channel image uses their average and other
    counts repeat them cyclically (channel ``c`` uses ``c % 3``), the way segcore adapts
    the first convolution of pretrained weights.

    Example: ``resolve_normalization("resnet34", "imagenet").mean == (0.485, 0.456, 0.406)``.
    """
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise InvalidOptionError(f"channels must be a positive int, got {channels!r}")
    if encoder is not None and pretrained is not None:
        import segcore

        params = segcore.get_preprocessing_params(encoder, pretrained=pretrained)
        return Normalization(
            mean=_fit_channels(params["mean"], channels),
            std=_fit_channels(params["std"], channels),
            input_space=params["input_space"],
            input_range=tuple(float(v) for v in params["input_range"]),  # type: ignore[arg-type]
            source=f"weights {pretrained!r} of encoder {encoder!r}",
        )
    if statistics is not None:
        mean, std = (tuple(float(v) for v in values) for values in statistics)
        if len(mean) != channels or len(std) != channels:
            raise InvalidOptionError(
                f"statistics have {len(mean)} mean and {len(std)} std values for "
                f"{channels} channels")
        std = tuple(max(v, 1e-6) for v in std)  # a constant channel must not divide by 0
        return Normalization(mean, std, source="dataset statistics")
    return Normalization(_fit_channels(IMAGENET_MEAN, channels),
                         _fit_channels(IMAGENET_STD, channels), source="ImageNet defaults")


def _fit_channels(values: Sequence[float] | None, channels: int) -> tuple[float, ...] | None:
    if values is None:
        return None
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    return tuple(values[c % len(values)] for c in range(channels))


class SegmentationTransform:
    """A ``v2`` pipeline applied to an image and its mask together, then colour, normalisation.

    Call it as ``transform(image, mask)``: ``image`` ``(C, H, W)`` float in [0, 1], ``mask``
    ``(H, W)`` int64 class indices or ``(K, H, W)`` float 0/1; returns plain tensors of the
    same kinds (the mask keeps its dtype and values). ``color`` (a ``v2.ColorJitter``) touches
    the image only: all of it for 3 channels, brightness and contrast for 1 channel, nothing
    for other channel counts (torchvision's colour operations take 1 or 3 channels).
    """

    def __init__(self, steps: Sequence[Any],
                 normalization: Normalization | None = None,
                 color: v2.ColorJitter | None = None, *, rotate90: float = 0.0) -> None:
        self.steps = list(steps)
        self.rotate90 = rotate90
        self.pipeline = v2.Compose(self.steps) if self.steps else None
        self.color = color
        self.gray_color = (v2.ColorJitter(brightness=color.brightness, contrast=color.contrast)
                           if color is not None and (color.brightness or color.contrast)
                           else None)
        self.normalization = normalization

    def __call__(self, image: torch.Tensor, mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pipeline is not None:
            image, mask = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask))
            image = image.as_subclass(torch.Tensor)
            mask = mask.as_subclass(torch.Tensor)
        if self.rotate90 and float(torch.rand(())) < self.rotate90:
            square = image.shape[-1] == image.shape[-2]
            turns = int(torch.randint(1, 4, ())) if square else 2
            image = torch.rot90(image, turns, (-2, -1))
            mask = torch.rot90(mask, turns, (-2, -1))
        channels = image.shape[-3]
        if self.color is not None and channels == 3:
            image = self.color(image)
        elif self.gray_color is not None and channels == 1:
            image = self.gray_color(image)
        if self.normalization is not None:
            image = self.normalization(image)
        return image, mask

    def __repr__(self) -> str:
        steps = [type(step).__name__ for step in self.steps]
        steps += [f"RandomRotate90(p={self.rotate90:g})"] if self.rotate90 else []
        steps += ["ColorJitter"] if self.color is not None else []
        return f"SegmentationTransform([{', '.join(steps)}], normalization={self.normalization!r})"


def build_train_transform(
    config: AugmentConfig | None = None,
    normalization: Normalization | None = None,
    *,
    ignore_index: int | None = None,
) -> SegmentationTransform:
    """The training transform of ``config`` (the defaults when ``None``).

    Args:
        config: which augmentations run (``AugmentConfig``).
        normalization: applied last (``resolve_normalization(...)``); ``None`` leaves the
            image in [0, 1].
        ignore_index: the mask value of pixels the affine step uncovers and of the padding
            of ``crop = "random"`` (else 0).

    Example: ``build_train_transform(AugmentConfig(size=96, rotation=0))``.
    """
    config = config or AugmentConfig()
    mask_fill = ignore_index if ignore_index is not None else 0
    if not config.enabled:  # nothing random: what validation does
        return build_eval_transform(normalization, size=config.size,
                                    center_crop=config.crop == "random", mask_fill=mask_fill)
    steps: list[Any] = []
    if config.size is not None and config.crop == "random":
        steps.append(v2.RandomCrop(list(config.size), pad_if_needed=True,
                                   fill={tv_tensors.Image: 0.0, tv_tensors.Mask: mask_fill}))
    elif config.size is not None:
        steps.append(v2.RandomResizedCrop(list(config.size), scale=config.crop_scale,
                                          ratio=config.crop_ratio, antialias=True))
    if config.hflip:
        steps.append(v2.RandomHorizontalFlip(config.hflip))
    if config.vflip:
        steps.append(v2.RandomVerticalFlip(config.vflip))
    if config.rotation or config.translate or config.scale != (1.0, 1.0):
        steps.append(v2.RandomAffine(
            degrees=config.rotation,
            translate=(config.translate, config.translate) if config.translate else None,
            scale=config.scale,
            fill={tv_tensors.Image: 0.0, tv_tensors.Mask: mask_fill},
        ))
    strengths = {"brightness": config.brightness, "contrast": config.contrast,
                 "saturation": config.saturation, "hue": config.hue}
    strengths = {name: value for name, value in strengths.items() if value}
    color = v2.ColorJitter(**strengths) if strengths else None
    return SegmentationTransform(steps, normalization, color, rotate90=config.rotate90)


def build_eval_transform(
    normalization: Normalization | None = None, *, size: tuple[int, int] | int | None = None,
    center_crop: bool = False, mask_fill: int = 0,
) -> SegmentationTransform:
    """The evaluation transform: an optional resize to ``size``, then ``normalization``.

    Nothing random; with ``size=None`` the image keeps its size. ``center_crop=True`` takes
    the centre ``size`` window at the image's own scale instead of the resize (padding where
    the image is smaller: image 0, mask ``mask_fill``), to match ``crop = "random"``
    training. Example: ``build_eval_transform(resolve_normalization(), size=256)``.
    """
    steps: list[Any] = []
    if size is not None:
        size_pair = (size, size) if isinstance(size, int) else tuple(size)
        steps.append(CenterCropOrPad(size_pair, mask_fill=mask_fill) if center_crop
                     else v2.Resize(list(size_pair), antialias=True))
    return SegmentationTransform(steps, normalization)


class CenterCropOrPad:
    """The centre ``(height, width)`` window of an image and its mask, at their own scale.

    A side shorter than the window is padded on both sides (image 0, mask ``mask_fill``)
    first. Called as ``step(image, mask)`` on ``tv_tensors`` (a step of
    ``SegmentationTransform``); returns both, cropped alike.
    """

    def __init__(self, size: Sequence[int], *, mask_fill: int = 0) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.mask_fill = mask_fill

    def __call__(self, image: torch.Tensor, mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        missing_height = max(self.size[0] - height, 0)
        missing_width = max(self.size[1] - width, 0)
        if missing_height or missing_width:
            padding = [missing_width // 2, missing_height // 2,
                       missing_width - missing_width // 2, missing_height - missing_height // 2]
            image = v2.functional.pad(image, padding, fill=0.0)
            mask = v2.functional.pad(mask, padding, fill=self.mask_fill)
        return (v2.functional.center_crop(image, list(self.size)),
                v2.functional.center_crop(mask, list(self.size)))

    def __repr__(self) -> str:
        return f"CenterCropOrPad(size={self.size}, mask_fill={self.mask_fill})"
