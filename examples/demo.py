"""Build a few architectures from names, run them on a random batch and print a summary.

Run with ``nox -s demo`` (or ``python examples/demo.py`` where segcore and its plugins are
installed). No pretrained weights are downloaded.
"""

from __future__ import annotations

import time

import torch

import segcore

MODELS = [
    ("unet", "resnet34", {"in_channels": 1, "classes": 3}),
    ("unet", "tu-convnext_atto", {"classes": 2, "decoder_attention_type": "scse"}),
    ("deeplabv3", "resnet18", {"classes": 5}),
    ("deeplabv3plus", "tu-resnest50d", {"classes": 5, "aux_params": {"classes": 4}}),
]


def _millions(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def main() -> None:
    torch.manual_seed(0)
    print(f"segcore {segcore.__version__} with torch {torch.__version__}")
    print(f"architectures: {', '.join(segcore.list_architectures())}")
    print(f"encoders: {len(segcore.list_encoders())} named, plus any timm model as 'tu-<name>'")
    print()
    header = (f"{'architecture':<14} {'encoder':<18} {'params':>8} {'encoder':>8} "
              f"{'output':<22} {'time':>8}")
    print(header)
    print("-" * len(header))
    for architecture, encoder, options in MODELS:
        started = time.perf_counter()
        model = segcore.build(architecture, encoder=encoder, **options).eval()
        built = time.perf_counter() - started
        x = torch.randn(2, options.get("in_channels", 3), 128, 128)
        with torch.inference_mode():
            started = time.perf_counter()
            output = model(x)
            elapsed = time.perf_counter() - started
        shapes = output if isinstance(output, tuple) else (output,)
        shape_text = " + ".join("x".join(map(str, s.shape)) for s in shapes)
        print(f"{architecture:<14} {encoder:<18} {_millions(model):>7.1f}M "
              f"{_millions(model.encoder):>7.1f}M {shape_text:<22} {elapsed * 1000:>6.0f}ms"
              f"   (built in {built:.2f}s)")
    print()
    model = segcore.Unet(encoder_name="resnet34", encoder_weights=None, in_channels=1, classes=3)
    print("segcore.Unet(encoder_name='resnet34', encoder_weights=None, in_channels=1, classes=3):")
    print(f"  encoder out_channels {model.encoder.out_channels}, decoder blocks "
          f"{len(model.decoder.blocks)}, config keys {sorted(model.config)[:4]}...")


if __name__ == "__main__":
    main()
