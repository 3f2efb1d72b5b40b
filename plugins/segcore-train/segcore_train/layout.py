"""Names of the dataset folder layout and the defaults the command line shows.

Imports nothing heavy: the ``segcore`` command imports it (through ``segcore_train.cli``) each
time it starts.

The layout::

    DIR/
      images/        <stem>.png | .jpg | .jpeg | .tif | .tiff
      masks/         <stem>.png | .tif | .tiff   (class indices, one per pixel)
                     multi-label: <stem>/<k>.png for k = 0..K-1, or <stem>.tif with K channels
      splits.json    optional: {"train": [stems], "val": [stems], ...}
      classes.txt    optional: one class name per line, in index order
"""

from __future__ import annotations

IMAGES_DIR = "images"
MASKS_DIR = "masks"
SPLITS_FILE = "splits.json"
CLASSES_FILE = "classes.txt"

#: Image files read (compared case-insensitively).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Mask files read: lossless formats only.
MASK_SUFFIXES = (".png", ".tif", ".tiff")
#: Lossy formats, refused for masks (compression changes the class values at edges).
LOSSY_SUFFIXES = (".jpg", ".jpeg")
TIFF_SUFFIXES = (".tif", ".tiff")

#: The split names a training run uses.
TRAIN_SPLIT = "train"
VAL_SPLIT = "val"

#: Defaults of ``segcore data synth`` / ``write_synthetic_dataset``.
SYNTH_COUNT = 200
SYNTH_SIZE = 128
SYNTH_CLASSES = 4
SYNTH_SEED = 0
#: The most classes the synthetic dataset has (background and seven shapes).
SYNTH_MAX_CLASSES = 8

#: Defaults of the validation and of the fraction split.
MAX_LISTED_PROBLEMS = 20
VAL_FRACTION = 0.2
SPLIT_SEED = 0
