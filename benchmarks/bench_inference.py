"""segcore.optimize_for_inference vs SMP 0.6.0 eager inference, on the same model and input.

Run with ``python benchmarks/bench_inference.py`` in an environment that has both segcore
(with segcore-unet and segcore-resnet) and segmentation_models_pytorch 0.6.0. A Unet/resnet34
is built with random weights on both sides, SMP's state dict is loaded into segcore's, and
forward passes of one image are timed interleaved (medians), on the CPU with 2 threads:

* ``smp``: SMP's model in eval mode under ``torch.inference_mode`` (SMP's eager path);
* ``segcore``: segcore's model, the same way;
* ``optimized``: ``segcore.optimize_for_inference(model)`` (BatchNorm folded into the
  convolutions, channels_last, inference mode).

Prints one row per input size: milliseconds of each and the speed-up over SMP (goal >= 1.25),
after checking that the optimized outputs equal SMP's within 1e-4 (relative to their scale).
"""

from __future__ import annotations

import argparse
import warnings

import torch
from bench_models import interleaved_medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    import segmentation_models_pytorch as smp

    import segcore

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = smp.Unet(arguments.encoder, encoder_weights=None, classes=2).eval()
    ours = segcore.Unet(encoder_name=arguments.encoder, encoder_weights=None, classes=2).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    optimized = segcore.optimize_for_inference(ours)

    print(f"Unet/{arguments.encoder}, batch {arguments.batch}, CPU, {arguments.threads} "
          f"threads, medians of {arguments.repeats} (torch {torch.__version__}, SMP "
          f"{smp.__version__})")
    print(f"{'size':>6} {'smp ms':>9} {'segcore ms':>11} {'optimized ms':>13} "
          f"{'speed-up vs smp':>16}")
    for size in arguments.sizes:
        x = torch.randn(arguments.batch, 3, size, size)
        with torch.inference_mode():
            expected = reference(x)
        error = (optimized(x) - expected).abs().max().item()
        scale = max(1.0, expected.abs().max().item())
        assert error <= 1e-4 * scale, f"optimized differs from SMP by {error}"

        def run_smp(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                reference(x)

        def run_segcore(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                ours(x)

        def run_optimized(x: torch.Tensor = x) -> None:
            optimized(x)

        times = interleaved_medians({"smp": run_smp, "segcore": run_segcore,
                                     "optimized": run_optimized}, arguments.repeats)
        print(f"{size:>6} {times['smp'] * 1e3:>9.1f} {times['segcore'] * 1e3:>11.1f} "
              f"{times['optimized'] * 1e3:>13.1f} {times['smp'] / times['optimized']:>15.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
