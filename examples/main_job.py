"""The main job on the embedded default: synthetic data -> train -> evaluate -> tiled prediction.

Run with ``./tasks demo`` (or ``python examples/main_job.py [WORKDIR]`` where segcore and its
plugins are installed). It writes the synthetic dataset (``segcore data synth``), trains a
Unet on a resnet18 on the CPU for a few minutes (``segcore train``), prints the validation mIoU
(``segcore evaluate``) and predicts a large synthetic image with sliding windows
(``segcore predict``). Nothing is downloaded. ``--epochs`` and ``--count`` trade time for
accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image
from segcore_train import (
    evaluate,
    predict_file,
    render_sample,
    scan,
    train,
    write_synthetic_dataset,
)
from segcore_train.augment import Normalization, build_eval_transform

import segcore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", type=Path, default=Path("segcore-main-job"))
    parser.add_argument("--count", type=int, default=2000, help="synthetic images")
    parser.add_argument("--size", type=int, default=64, help="their height and width")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "no"],
                        help="train.amp; auto: bfloat16 on a CPU that computes it natively")
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    started = time.perf_counter()
    work = arguments.workdir.resolve()

    data = work / "data"
    if not (data / "images").is_dir():
        # Images of one size train as they are evaluated: no resize changes the shapes'
        # proportions between the two (mixed sizes cost about 0.1 mIoU in this short run).
        write_synthetic_dataset(data, count=arguments.count, size=arguments.size,
                                min_size=arguments.size)
    print(f"1. data: {data} ({arguments.count} synthetic {arguments.size}x{arguments.size} "
          "images, 4 classes)")

    run = work / "runs" / time.strftime("%Y%m%d-%H%M%S")
    result = train({
        "data": {"root": str(data), "classes": 4},
        # the 8 flips and quarter turns of the square, nothing else: exact copies of the
        # shapes (no resize or interpolation), which keep the model from learning the
        # training images by heart (10 epochs: 0.822 mIoU without, 0.831 with the flips)
        "augment": {"size": None, "hflip": 0.5, "vflip": 0.5, "rotate90": 0.75,
                    "rotation": 0.0, "translate": 0.0, "scale": [1.0, 1.0],
                    "brightness": 0.0, "contrast": 0.0, "saturation": 0.0},
        "model": {"architecture": "unet", "encoder": "resnet18"},
        "loss": {"terms": [{"name": "dice", "weight": 1.0},
                           {"name": "soft_ce", "weight": 1.0}]},
        "optimizer": {"lr": 0.003},
        "train": {"epochs": arguments.epochs, "batch_size": arguments.batch_size, "workers": 1,
                  "amp": arguments.amp},
        "output": {"run_dir": str(run)},
    })
    print(f"2. trained in {time.perf_counter() - started:.0f} s: {result.run_dir}")

    best = segcore.from_pretrained(result.run_dir / "best")
    report = scan(data, classes=4)
    normalization = _normalization(result.run_dir / "best")
    scores = evaluate(best, report.dataset("val", build_eval_transform(normalization)),
                      classes=4)
    print(scores.table())
    print(f"3. validation mIoU {scores.means['iou']:.3f}")

    large = work / "large.png"
    sample = render_sample(10_000, size=1024)
    Image.fromarray(sample.image).save(large)
    mask = predict_file(best, large, work / "large_mask.png", tile=256, overlap=0.25,
                        normalization=normalization)
    print(f"4. predicted {large} ({sample.image.shape[1]}x{sample.image.shape[0]} px, 256-px "
          f"tiles) -> {mask}")
    print(f"plots: {result.run_dir / 'curves.png'}, {result.run_dir / 'predictions.png'}, "
          f"{result.run_dir / 'confusion.png'}  ({time.perf_counter() - started:.0f} s in all)")


def _normalization(model_dir: Path) -> Normalization:
    """The normalisation training used (saved beside the best model)."""
    from segcore_train.evaluate_cli import load_normalization

    return load_normalization(model_dir, channels=3)


if __name__ == "__main__":
    main()
