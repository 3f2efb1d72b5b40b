"""segcore vs SMP 0.6.0: encoder forward time, one representative name per family.

Run with ``nox -s bench`` (or ``python benchmarks/bench_encoders.py --names resnet34 vgg11``).
Each encoder is built with random weights in eval mode on both sides, SMP's state dict is
loaded into segcore's (the same numbers flow through both), and forward passes under
``torch.inference_mode`` are timed interleaved (medians). Prints one table: name, family,
segcore ms, SMP ms, ratio (the goal is at most 1.05).
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings

import torch
from bench_models import interleaved_medians

HAS_SMP = importlib.util.find_spec("segmentation_models_pytorch") is not None

#: one name per family (the smallest of each, mostly): the families share code within
REPRESENTATIVES = (
    "resnet34", "resnext50_32x4d", "vgg11_bn", "densenet121", "se_resnet50", "dpn68",
    "inceptionv4", "xception", "efficientnet-b0", "mobilenet_v2", "mobileone_s0",
    "timm-efficientnet-b0", "timm-skresnet18", "mit_b0", "timm-resnest14d",
    "timm-res2net50_26w_4s", "timm-regnetx_002", "timm-gernet_s", "timm-mobilenetv3_large_100",
)


def encoder_times(name: str, repeats: int, batch: int, size: int) -> dict[str, float]:
    import segcore

    torch.manual_seed(0)
    ours = segcore.get_encoder(name).eval()
    functions = {}
    x = torch.randn(batch, 3, size, size)
    if HAS_SMP:
        import segmentation_models_pytorch as smp

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = smp.encoders.get_encoder(name, weights=None).eval()
        ours.load_state_dict(reference.state_dict(), strict=True)

        def run_smp() -> None:
            with torch.inference_mode():
                reference(x)

        functions["smp"] = run_smp

    def run_segcore() -> None:
        with torch.inference_mode():
            ours(x)

    functions["segcore"] = run_segcore
    return interleaved_medians(functions, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", nargs="*", default=list(REPRESENTATIVES))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    import segcore
    from segcore.factory import get_encoder_spec

    print(f"encoder forward, {arguments.batch}x3x{arguments.size}x{arguments.size}, CPU, "
          f"{arguments.threads} threads, median of {arguments.repeats} interleaved runs")
    print(f"{'encoder':<28} {'family':<22} {'segcore ms':>10} {'SMP ms':>10} {'ratio':>6}")
    for name in arguments.names:
        if name not in segcore.list_encoders():
            print(f"{name:<28} (not installed)")
            continue
        times = encoder_times(name, arguments.repeats, arguments.batch, arguments.size)
        family = get_encoder_spec(name).family
        ours = times["segcore"] * 1e3
        if "smp" in times:
            theirs = times["smp"] * 1e3
            print(f"{name:<28} {family:<22} {ours:>10.1f} {theirs:>10.1f} "
                  f"{ours / theirs:>6.2f}")
        else:
            print(f"{name:<28} {family:<22} {ours:>10.1f} {'not installed':>10}")


if __name__ == "__main__":
    main()
