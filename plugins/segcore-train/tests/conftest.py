"""Fixtures of segcore-train's tests: a dataset folder writer (Pillow and tifffile) and small
synthetic datasets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from segcore_train.synth import write_synthetic_dataset


class DatasetWriter:
    """Writes files into ``root/images`` and ``root/masks`` for a test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "images"
        self.masks = root / "masks"
        self.images.mkdir(parents=True)
        self.masks.mkdir()
        self.rng = np.random.default_rng(0)

    def rgb(self, height: int = 24, width: int = 32) -> np.ndarray:
        return self.rng.integers(0, 256, (height, width, 3), dtype=np.uint8)

    def classes(self, height: int = 24, width: int = 32, classes: int = 3) -> np.ndarray:
        return self.rng.integers(0, classes, (height, width), dtype=np.uint8)

    def image(self, stem: str, array: np.ndarray | None = None, suffix: str = ".png",
              **save: object) -> Path:
        array = self.rgb() if array is None else array
        path = self.images / f"{stem}{suffix}"
        _write(path, array, **save)
        return path

    def mask(self, stem: str, array: np.ndarray | None = None, suffix: str = ".png",
             palette: Sequence[int] | None = None) -> Path:
        array = self.classes() if array is None else array
        path = self.masks / f"{stem}{suffix}"
        if palette is not None:
            picture = Image.fromarray(array)
            picture.putpalette(list(palette))
            picture.save(path)
        else:
            _write(path, array)
        return path

    def pair(self, stem: str, height: int = 24, width: int = 32, classes: int = 3
             ) -> tuple[Path, Path]:
        return (self.image(stem, self.rgb(height, width)),
                self.mask(stem, self.classes(height, width, classes)))

    def label_pngs(self, stem: str, planes: np.ndarray) -> list[Path]:
        folder = self.masks / stem
        folder.mkdir()
        paths = []
        for k, plane in enumerate(planes):
            paths.append(folder / f"{k}.png")
            Image.fromarray(plane).save(paths[-1])
        return paths

    def label_tiff(self, stem: str, planes_hwk: np.ndarray) -> Path:
        path = self.masks / f"{stem}.tif"
        tifffile.imwrite(path, planes_hwk, photometric="minisblack", planarconfig="contig")
        return path


def _write(path: Path, array: np.ndarray, **save: object) -> None:
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(path, array, **save)  # type: ignore[arg-type]
    else:
        Image.fromarray(array).save(path, **save)


@pytest.fixture
def writer(tmp_path: Path) -> DatasetWriter:
    """An empty dataset folder (``images/``, ``masks/``) and helpers that write into it."""
    return DatasetWriter(tmp_path / "data")


@pytest.fixture(scope="session")
def small_synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """Writes 10 synthetic 40-pixel images of 3 classes (8 train, 2 val) into a new folder."""

    def write(seed: int) -> Path:
        root = tmp_path_factory.mktemp(f"synth-seed-{seed}") / "synth"
        write_synthetic_dataset(root, count=10, size=40, classes=3, seed=seed)
        return root

    return write
