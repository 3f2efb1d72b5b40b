"""Peak memory and time of ``segcore predict``'s streaming path on a huge image (not a test).

    python benchmarks/bench_predict_memory.py [--size 8192] [--format png|tiff] [--tile 512]

Writes a synthetic SIZE x SIZE RGB image to a temporary folder, then predicts it in a child
process (so the figure is that process's alone) with a Unet/resnet18 (random weights, 4
classes, optimized with ``segcore.optimize_for_inference``) through
``segcore_train.predict_file``: palette PNG mask plus, with ``--probabilities``, the
probability maps. Prints the child's peak resident memory (``ru_maxrss``) and the time.
The goal: under 2 GB for 8192 x 8192 on the CPU.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_image(path: Path, size: int) -> None:
    import numpy as np
    import tifffile
    from PIL import Image

    rows = np.linspace(0, 255, size, dtype=np.float32)
    image = np.empty((size, size, 3), np.uint8)
    generator = np.random.default_rng(0)
    for top in range(0, size, 1024):  # a gradient with noise, written in strips
        strip = rows[top:top + 1024, None] * 0.5 + rows[None, :] * 0.5
        noise = generator.integers(0, 40, (strip.shape[0], size, 3))
        image[top:top + 1024] = (strip[:, :, None] * 0.8 + noise).astype(np.uint8)
    if path.suffix == ".tif":
        tifffile.imwrite(path, image, photometric="rgb")
    else:
        with_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        Image.fromarray(image).save(path, compress_level=1)
        Image.MAX_IMAGE_PIXELS = with_limit


def child(arguments: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(arguments.threads)
    from segcore_train.augment import resolve_normalization
    from segcore_train.predict import predict_file

    import segcore

    torch.manual_seed(0)
    model = segcore.build("unet", encoder="resnet18", encoder_weights=None, classes=4).eval()
    fast = segcore.optimize_for_inference(model)
    started = time.perf_counter()
    predict_file(fast, arguments.image, Path(arguments.out) / "mask.png", tile=arguments.tile,
                 overlap=0.25, batch_size=arguments.batch_size,
                 normalization=resolve_normalization(),
                 probabilities=arguments.probabilities)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"peak RSS {peak:.0f} MiB, {seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--format", choices=("png", "tiff"), default="png")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--probabilities", choices=("png16", "tiff"), default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments)
        return
    with tempfile.TemporaryDirectory(prefix="segcore-bench-") as folder:
        image = Path(folder) / ("image.tif" if arguments.format == "tiff" else "image.png")
        started = time.perf_counter()
        write_image(image, arguments.size)
        print(f"wrote {arguments.size}x{arguments.size} RGB {arguments.format} in "
              f"{time.perf_counter() - started:.1f} s; predicting (tile {arguments.tile}, "
              f"batch {arguments.batch_size}, {arguments.threads} threads)", flush=True)
        command = [sys.executable, __file__, "--child", "--image", str(image), "--out", folder,
                   "--tile", str(arguments.tile), "--batch-size", str(arguments.batch_size),
                   "--threads", str(arguments.threads)]
        if arguments.probabilities:
            command += ["--probabilities", arguments.probabilities]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        print(result.stdout.strip() or result.stderr.strip()[-2000:])
        if result.returncode:
            raise SystemExit(result.returncode)


if __name__ == "__main__":
    main()
