"""Augmentation keeps image and mask aligned and masks integer; normalisation's sources."""

from __future__ import annotations

import re

import pytest
import torch
from segcore_train import (
    AugmentConfig,
    Normalization,
    build_eval_transform,
    build_train_transform,
    resolve_normalization,
    scan,
    write_synthetic_dataset,
)
from segcore_train.augment import IMAGENET_MEAN, IMAGENET_STD

from segcore import testing
from segcore.errors import InvalidOptionError, UnknownNameError
from segcore.specs import EncoderSpec, Preprocessing, WeightSource

FOREGROUND = 3


def blocks(seed: int, height: int = 64, width: int = 80) -> tuple[torch.Tensor, torch.Tensor]:
    """An image whose channel 0 is 1 exactly where the mask is FOREGROUND (8-pixel blocks)."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.rand(height // 8, width // 8, generator=generator) > 0.5
    foreground = grid.repeat_interleave(8, 0).repeat_interleave(8, 1)
    image = torch.rand(3, height, width, generator=generator)
    image[0] = foreground.float()
    return image, foreground.long() * FOREGROUND


def agreement(image: torch.Tensor, mask: torch.Tensor) -> float:
    return ((image[0] > 0.5) == (mask == FOREGROUND)).float().mean().item()


@pytest.mark.parametrize("seed", range(6))
def test_default_augmentation_keeps_image_and_mask_aligned(seed):
    transform = build_train_transform(AugmentConfig(size=48))
    torch.manual_seed(seed)
    image, mask = transform(*blocks(seed))
    assert image.shape == (3, 48, 48) and mask.shape == (48, 48)
    assert type(image) is torch.Tensor and type(mask) is torch.Tensor
    assert agreement(image, mask) > 0.9
    # the test sees misalignment: the same mask against a flipped image agrees far less
    assert agreement(image.flip(-1), mask) < 0.8 or agreement(image.flip(-2), mask) < 0.8


def test_masks_keep_their_dtype_and_integer_values():
    strong = AugmentConfig(size=40, rotation=45, scale=(0.6, 0.7), translate=0.2)
    image, mask = blocks(0)
    torch.manual_seed(0)
    _, out = build_train_transform(strong)(image, mask)
    assert out.dtype == torch.int64 and set(out.unique().tolist()) <= {0, FOREGROUND}
    torch.manual_seed(0)
    _, out = build_train_transform(strong, ignore_index=255)(image, mask)
    assert set(out.unique().tolist()) == {0, FOREGROUND, 255}  # uncovered pixels are ignored


def test_multilabel_masks_stay_binary():
    image, mask = blocks(1)
    labels = torch.stack([mask == FOREGROUND, mask != FOREGROUND]).float()
    torch.manual_seed(1)
    _, out = build_train_transform(AugmentConfig(size=32, rotation=30))(image, labels)
    assert out.shape == (2, 32, 32) and out.dtype == torch.float32
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_colour_jitter_follows_the_channel_count():
    still = AugmentConfig(size=None, hflip=0, rotation=0, translate=0, scale=(1, 1),
                          brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1)
    transform = build_train_transform(still)
    mask = torch.zeros(16, 16, dtype=torch.long)
    torch.manual_seed(0)
    for channels, changed in ((3, True), (1, True), (4, False), (2, False)):
        image = torch.rand(channels, 16, 16)
        out, _ = transform(image, mask)
        assert out.shape == image.shape
        assert (not torch.equal(out, image)) is changed, channels
    geometric = build_train_transform(AugmentConfig(size=24))
    assert geometric(torch.rand(4, 32, 32), torch.zeros(32, 32, dtype=torch.long))[0].shape == (
        4, 24, 24)


def test_config_can_disable_steps_and_everything():
    steps = build_train_transform(AugmentConfig(hflip=0, rotation=0, translate=0, scale=(1, 1),
                                                brightness=0, contrast=0, saturation=0)).steps
    assert [type(step).__name__ for step in steps] == ["RandomResizedCrop"]
    assert "ColorJitter" not in repr(build_train_transform(AugmentConfig(
        brightness=0, contrast=0, saturation=0)))
    off = build_train_transform(AugmentConfig(size=(16, 20), enabled=False))
    image, mask = blocks(2)
    first, again = off(image, mask), off(image, mask)
    assert torch.equal(first[0], again[0]) and first[0].shape == (3, 16, 20)
    assert build_train_transform(AugmentConfig(size=None, enabled=False)).steps == []


def test_config_from_dict_and_validation():
    config = AugmentConfig.from_dict({"size": 96, "vflip": 0.5, "crop_scale": [0.3, 1]})
    assert config.size == (96, 96) and config.vflip == 0.5 and config.crop_scale == (0.3, 1.0)
    assert AugmentConfig().size == (256, 256)
    with pytest.raises(InvalidOptionError, match=r"unknown augmentation setting 'vflp'.*'vflip'"):
        AugmentConfig.from_dict({"vflp": 0.5})
    for bad, words in (({"hflip": 1.5}, "hflip must be a number in 0..1"),
                       ({"size": (0, 4)}, "size must be None, an int or"),
                       ({"crop_scale": (0.8, 0.5)}, "crop_scale must be (low, high)"),
                       ({"crop_scale": (0.5, 2)}, "crop_scale must not exceed 1")):
        with pytest.raises(InvalidOptionError, match=re.escape(words)):
            AugmentConfig(**bad)


def test_eval_transform_is_deterministic():
    image, mask = blocks(3)
    out = build_eval_transform(size=32)(image, mask)
    assert torch.equal(out[0], build_eval_transform(size=32)(image, mask)[0])
    assert out[0].shape == (3, 32, 32) and out[1].shape == (32, 32)
    kept = build_eval_transform()(image, mask)
    assert torch.equal(kept[0], image) and torch.equal(kept[1], mask)


def test_pretrained_encoder_gives_its_weights_normalisation():
    preprocessing = Preprocessing(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0),
                                  input_space="BGR", input_range=(0, 255))
    spec = EncoderSpec(name="norm-test", family="Testing",
                       factory="segcore.testing:build_tiny_encoder",
                       weights={"custom": WeightSource(preprocessing=preprocessing)})
    with testing.specs_installed(encoders=[spec]):
        normalization = resolve_normalization("norm-test", "custom")
        assert normalization.mean == (10.0, 20.0, 30.0) and normalization.input_space == "BGR"
        assert "weights 'custom' of encoder 'norm-test'" in normalization.source
        image = torch.rand(3, 4, 5)
        expected = (image.flip(0) * 255 - torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1)) / (
            torch.tensor([2.0, 4.0, 5.0]).view(3, 1, 1))
        assert torch.allclose(normalization(image), expected)
        assert torch.allclose(normalization(image[None])[0], expected)  # batches too
        gray = resolve_normalization("norm-test", "custom", channels=1)
        assert gray.mean == (20.0,) and gray.std == (11 / 3,)
        four = resolve_normalization("norm-test", "custom", channels=4)
        assert four.mean == (10.0, 20.0, 30.0, 10.0)
        # without a weights tag the encoder's statistics do not apply
        assert resolve_normalization("norm-test", None).source == "ImageNet defaults"


def test_dataset_statistics_then_imagenet():
    from_data = resolve_normalization(statistics=((0.5, 0.4), (0.2, 0.0)), channels=2)
    assert from_data.mean == (0.5, 0.4) and from_data.std == (0.2, 1e-6)
    assert from_data.source == "dataset statistics"
    default = resolve_normalization()
    assert default.mean == IMAGENET_MEAN and default.std == IMAGENET_STD
    with pytest.raises(InvalidOptionError, match="statistics have 2 mean"):
        resolve_normalization(statistics=((0.5, 0.4), (0.2, 0.2)), channels=3)
    with pytest.raises(InvalidOptionError, match="has 3 mean values but the image has 2"):
        default(torch.rand(2, 4, 4))


def test_unknown_encoder_is_the_core_error():
    with pytest.raises(UnknownNameError):
        resolve_normalization("no-such-encoder", "imagenet")


def test_a_data_loader_batches_the_augmented_dataset(tmp_path):
    write_synthetic_dataset(tmp_path / "synth", count=6, size=40)
    report = scan(tmp_path / "synth", classes=4)
    normalization = resolve_normalization(statistics=(report.mean, report.std))
    transform = build_train_transform(AugmentConfig(size=32), normalization)
    train = report.dataset("train", transform=transform)
    loader = torch.utils.data.DataLoader(train, batch_size=len(train), shuffle=False)
    images, masks = next(iter(loader))
    assert images.shape == (len(train), 3, 32, 32) and images.dtype == torch.float32
    assert masks.shape == (len(train), 32, 32) and masks.dtype == torch.int64
    assert masks.max() < 4 and abs(images.mean().item()) < 1.0
    assert isinstance(transform.normalization, Normalization)


def _quiet(**values: object) -> AugmentConfig:
    """Only the steps in ``values`` (no crop, no affine, no colour)."""
    off = {"size": None, "hflip": 0.0, "rotation": 0.0, "translate": 0.0, "scale": (1.0, 1.0),
           "brightness": 0.0, "contrast": 0.0, "saturation": 0.0}
    return AugmentConfig(**{**off, **values})


def test_quarter_turns_are_exact_and_move_the_mask_with_the_image():
    transform = build_train_transform(_quiet(rotate90=1.0))
    assert "RandomRotate90(p=1)" in repr(transform)
    image, mask = blocks(0, 64, 64)
    turns_seen = set()
    torch.manual_seed(0)
    for _ in range(30):
        turned_image, turned_mask = transform(image, mask)
        turns = [k for k in range(1, 4) if torch.equal(turned_image, torch.rot90(image, k, (1, 2)))]
        assert len(turns) == 1, "a quarter turn of the exact pixels"
        assert torch.equal(turned_mask, torch.rot90(mask, turns[0], (0, 1)))
        turns_seen.add(turns[0])
    assert turns_seen == {1, 2, 3}


def test_an_image_that_is_not_square_turns_by_180_only():
    transform = build_train_transform(_quiet(rotate90=1.0))
    image, mask = blocks(1, 48, 80)
    torch.manual_seed(0)
    for _ in range(10):
        turned_image, turned_mask = transform(image, mask)
        assert torch.equal(turned_image, torch.rot90(image, 2, (1, 2)))
        assert torch.equal(turned_mask, torch.rot90(mask, 2, (0, 1)))


def test_quarter_turns_are_off_by_default_and_bounded():
    image, mask = blocks(2, 64, 64)
    assert AugmentConfig().rotate90 == 0.0
    assert torch.equal(build_train_transform(_quiet())(image, mask)[0], image)
    with pytest.raises(InvalidOptionError, match=r"rotate90 must be a number in 0\.\.1"):
        AugmentConfig(rotate90=1.5)


def _window_of(result: torch.Tensor, source: torch.Tensor) -> tuple[int, int] | None:
    """Where ``result`` lies in ``source`` as an exact window (top, left), else None."""
    height, width = result.shape[-2:]
    for top in range(source.shape[-2] - height + 1):
        for left in range(source.shape[-1] - width + 1):
            if torch.equal(source[..., top:top + height, left:left + width], result):
                return top, left
    return None


def test_random_crop_takes_windows_at_the_image_scale():
    transform = build_train_transform(_quiet(size=(32, 40), crop="random"))
    assert "RandomCrop" in repr(transform) and "RandomResizedCrop" not in repr(transform)
    image, mask = blocks(3, 64, 80)
    places = set()
    torch.manual_seed(0)
    for _ in range(8):
        window_image, window_mask = transform(image, mask)
        assert window_image.shape == (3, 32, 40) and window_mask.shape == (32, 40)
        place = _window_of(window_image, image)
        assert place is not None, "the exact pixels of a window, no resize"
        top, left = place
        assert torch.equal(window_mask, mask[top:top + 32, left:left + 40])
        places.add(place)
    assert len(places) > 1, "the window moves"


def test_random_crop_pads_a_smaller_image_with_the_ignore_index():
    transform = build_train_transform(_quiet(size=48, crop="random"), ignore_index=255)
    image, mask = blocks(4, 32, 40)
    torch.manual_seed(0)
    padded_image, padded_mask = transform(image, mask)
    assert padded_image.shape == (3, 48, 48) and padded_mask.shape == (48, 48)
    # all of the image's 40 columns are there, 8 of the 48 are padding
    assert int((padded_mask == 255).sum()) == 48 * 48 - 32 * 40
    assert float(padded_image[:, padded_mask == 255].abs().sum()) == 0.0
    assert _window_of(image, padded_image) is not None


def test_centre_crop_without_augmentation_and_for_validation():
    image, mask = blocks(5, 64, 80)
    expected_image, expected_mask = image[:, 16:48, 20:60], mask[16:48, 20:60]
    quiet = build_train_transform(AugmentConfig(size=(32, 40), crop="random", enabled=False))
    validation = build_eval_transform(size=(32, 40), center_crop=True)
    for transform in (quiet, validation):
        assert "CenterCropOrPad" in repr(transform)
        cropped_image, cropped_mask = transform(image, mask)
        assert torch.equal(cropped_image, expected_image)
        assert torch.equal(cropped_mask, expected_mask)
    small_image, small_mask = blocks(6, 24, 32)
    padded_image, padded_mask = build_eval_transform(size=32, center_crop=True, mask_fill=7)(
        small_image, small_mask)
    assert padded_image.shape == (3, 32, 32)
    assert torch.equal(padded_mask[4:28], small_mask) and torch.equal(padded_image[:, 4:28],
                                                                      small_image)
    assert bool((padded_mask[:4] == 7).all()) and bool((padded_mask[28:] == 7).all())
    assert build_eval_transform(size=32)(image, mask)[0].shape == (3, 32, 32)  # a resize


def test_crop_mode_is_checked():
    assert AugmentConfig().crop == "resized"
    with pytest.raises(InvalidOptionError, match=r"crop must be one of 'resized', 'random', "
                                                 r"got 'resize'.*'resized'"):
        AugmentConfig(crop="resize")
    with pytest.raises(InvalidOptionError, match=r"crop must be one of .* got 3"):
        AugmentConfig(crop=3)
