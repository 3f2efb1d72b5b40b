"""segcore vs SMP 0.6.0: import-and-list time, build time, CPU train step and inference.

Run with ``nox -s bench``. Prints one table; SMP's column reads "not installed" without it.
Every figure is the median of several runs, with segcore and SMP interleaved so that machine
load affects both alike. Model figures use resnet34 on a 4x3x256x256 batch, for every
architecture installed in both libraries (``--architectures unet fpn`` picks some).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

HAS_SMP = importlib.util.find_spec("segmentation_models_pytorch") is not None

IMPORT_SCRIPTS = {
    "torch": "import torch",
    "segcore": "import segcore; segcore.list_encoders(); segcore.list_architectures()",
    "smp": "import segmentation_models_pytorch as smp; smp.encoders.get_encoder_names()",
}
TIMM_CHECK = "; import sys; print('timm' in sys.modules)"


def _subprocess_seconds(script: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    return time.perf_counter() - started, result.stdout.strip()


def import_times(repeats: int) -> dict[str, float]:
    names = ["torch", "segcore"] + (["smp"] if HAS_SMP else [])
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            samples[name].append(_subprocess_seconds(IMPORT_SCRIPTS[name])[0])
    return {name: statistics.median(values) for name, values in samples.items()}


def interleaved_medians(
    functions: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds of each function, run in turn so that load affects all alike."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    order = list(functions.items())
    for round_index in range(repeats):
        # alternate who goes first, so that neither always runs after the other's cleanup
        for name, function in order if round_index % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            function()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def _builders(architecture: str) -> dict[str, Callable[[], torch.nn.Module]]:
    import segcore

    class_name = segcore.get_architecture_class(architecture).__name__
    builders: dict[str, Callable[[], torch.nn.Module]] = {
        "segcore": lambda: getattr(segcore, class_name)(encoder_name="resnet34",
                                                        encoder_weights=None),
    }
    if HAS_SMP:
        import segmentation_models_pytorch as smp

        builders["smp"] = lambda: getattr(smp, class_name)(encoder_name="resnet34",
                                                           encoder_weights=None)
    return builders


def architectures_to_compare() -> list[str]:
    import segcore

    names = segcore.list_architectures()
    if not HAS_SMP:
        return names
    import segmentation_models_pytorch as smp

    known = {name.lower() for name in smp.MODEL_ARCHITECTURES_MAPPING}
    return [name for name in names if name in known and name != "dpt"]  # DPT takes a ViT


def model_times(architecture: str, repeats: int, batch: int,
                size: int) -> dict[str, dict[str, float]]:
    builders = _builders(architecture)
    results: dict[str, dict[str, float]] = {name: {} for name in builders}
    x = torch.randn(batch, 3, size, size)
    target = torch.rand(batch, 1, size, size)
    train_steps: dict[str, Callable[[], object]] = {}
    inferences: dict[str, Callable[[], object]] = {}
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

        def train_step(model=model, optimizer=optimizer) -> None:
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), target)
            loss.backward()
            optimizer.step()

        def inference(model=model) -> None:
            model.eval()
            with torch.inference_mode():
                model(x)

        train_steps[name] = train_step
        inferences[name] = inference
    for key, functions in (("build", builders), ("train step", train_steps),
                           ("inference", inferences)):
        # a build takes a fifth of a second and varies by 10 % from run to run: more rounds
        rounds = 3 * repeats if key == "build" else repeats
        for name, seconds in interleaved_medians(functions, rounds).items():
            results[name][key] = seconds
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--architectures", nargs="*", default=None,
                        help="architectures to time (default: every one SMP also has)")
    arguments = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {arguments.repeats} runs ({3 * arguments.repeats} for builds)")
    imports = import_times(arguments.repeats)
    segcore_imports_timm = _subprocess_seconds(IMPORT_SCRIPTS["segcore"] + TIMM_CHECK)[1]
    architectures = arguments.architectures or architectures_to_compare()

    def cell(value: float | None) -> str:
        return "not installed" if value is None else f"{value * 1000:10.0f} ms"

    rows = [
        ("import + list, over `import torch`",
         imports["segcore"] - imports["torch"],
         imports["smp"] - imports["torch"] if "smp" in imports else None),
    ]
    for architecture in architectures:
        models = model_times(architecture, arguments.repeats, arguments.batch, arguments.size)
        for key in ("build", "train step", "inference"):
            rows.append((f"{architecture}/resnet34 {key}",
                         models["segcore"][key], models.get("smp", {}).get(key)))
    width = max(len(row[0]) for row in rows)
    print(f"{'':<{width}}  {'segcore':>13}  {'SMP 0.6.0':>13}  ratio")
    for label, ours, theirs in rows:
        ratio = f"{ours / theirs:5.2f}x" if theirs else "  -"
        print(f"{label:<{width}}  {cell(ours):>13}  {cell(theirs):>13}  {ratio}")
    print(f"`import torch` alone: {imports['torch'] * 1000:.0f} ms; "
          f"segcore listing imports timm: {segcore_imports_timm}; train step and inference on "
          f"{arguments.batch}x3x{arguments.size}x{arguments.size}")


if __name__ == "__main__":
    main()
