"""Writes the documentation pages whose facts come from the code.

* docs/architectures.md: one section per installed architecture, from its spec, its class
  (docstring, constructor signature) and its options class.
* docs/export.md: the export matrix, from the outcomes that tests/integration/test_export.py
  records in tests/integration/export_results.json (``SEGCORE_WRITE_EXPORT_RESULTS=1``).

Run ``python docs/generate.py`` (``nox -s docs`` does); ``--check`` exits with status 1 when a
page is stale (tests/core/test_generated_docs.py runs the check).
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).parent


def _sections(doc: str) -> dict[str, str]:
    """A Google-style docstring split into its leading text and named sections."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in doc.splitlines():
        match = re.match(r"(Args|Attributes|Shapes|Example|Examples|Returns|Raises):{1,2}(\s|$)",
                         line.strip())
        if match and not line.startswith(" "):
            current = match.group(1)
            sections[current] = []
            continue
        sections[current].append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


def _argument_docs(text: str) -> dict[str, str]:
    """``{argument: description}`` from an Args/Attributes section (continuation lines joined)."""
    result: dict[str, str] = {}
    current: list[str] = []
    for line in text.splitlines():
        match = re.match(r"^\s{0,4}(\*{0,2}[\w, ]+):\s*(.*)$", line)
        if match and len(line) - len(line.lstrip()) <= 4:
            current = []
            for name in match.group(1).split(","):
                result[name.strip()] = ""
            current = [name.strip() for name in match.group(1).split(",")]
            for name in current:
                result[name] = match.group(2).strip()
        elif current and line.strip():
            for name in current:
                result[name] = (result[name] + " " + line.strip()).strip()
    return result


def _default(parameter: inspect.Parameter) -> str:
    if parameter.kind is parameter.VAR_KEYWORD:
        return "-"
    if parameter.default is inspect.Parameter.empty:
        return "required"
    return f"`{parameter.default!r}`"


def _architecture_section(entry: object) -> list[str]:
    import segcore

    spec = entry.spec  # type: ignore[attr-defined]
    model_class = segcore.get_architecture_class(spec.name)
    sections = _sections(inspect.getdoc(model_class) or "")
    lead = [p.strip() for p in sections[""].split("\n\n") if p.strip()]
    arguments = _argument_docs(sections.get("Args", ""))
    signature = inspect.signature(model_class.__init__)
    parameters = [p for p in signature.parameters.values() if p.name != "self"]
    needs = []
    if model_class.requires_dilation:
        needs.append("an encoder that supports dilation (`output_stride` 8/16; "
                     "`segcore list encoders` marks them)")
    if model_class.requires_divisible_input_shape:
        needs.append("any input size: inputs are padded to the next multiple of the encoder's "
                     "output stride and the mask is cropped back (sizes SMP accepts are not "
                     "padded)")
    else:
        needs.append("any input size, without padding")
    needs.append(f"`encoder_depth` from {model_class.min_encoder_depth} to 5")
    lines = [
        f"## {model_class.__name__} (`{spec.name}`)",
        "",
        *(f"{paragraph}\n" for paragraph in lead),
        f"Package: `{entry.distribution or entry.plugin}`. "  # type: ignore[attr-defined]
        f"`segcore.{model_class.__name__}(...)` or `segcore.build(\"{spec.name}\", ...)`.",
        "",
        "```python",
        f"{model_class.__name__}{_signature_text(parameters)}",
        "```",
        "",
        "| argument | default | meaning |",
        "| --- | --- | --- |",
    ]
    for parameter in parameters:
        name = parameter.name if parameter.kind is not parameter.VAR_KEYWORD \
            else f"**{parameter.name}"
        meaning = arguments.get(name, arguments.get(parameter.name, "")).replace("|", "\\|")
        lines.append(f"| `{name}` | {_default(parameter)} | {meaning} |")
    lines += ["", "Needs: " + "; ".join(needs) + ".", ""]
    example = sections.get("Example") or sections.get("Examples")
    if example:
        lines += ["```python", inspect.cleandoc(example), "```", ""]
    return lines


def _signature_text(parameters: list[inspect.Parameter]) -> str:
    parts = []
    keyword_only = False
    for parameter in parameters:
        if parameter.kind is parameter.KEYWORD_ONLY and not keyword_only:
            parts.append("*")
            keyword_only = True
        if parameter.kind is parameter.VAR_KEYWORD:
            parts.append(f"**{parameter.name}")
        elif parameter.default is inspect.Parameter.empty:
            parts.append(parameter.name)
        else:
            parts.append(f"{parameter.name}={parameter.default!r}")
    return "(\n    " + ",\n    ".join(parts) + ",\n)"


def render_architectures() -> str:
    from segcore.registry import get_registry

    entries = get_registry().entries("architectures")
    lines = [
        "# Architectures",
        "",
        "<!-- Generated by docs/generate.py from the installed architecture plugins; do not edit",
        "     by hand (`nox -s docs` rewrites it, a test fails when it is stale). -->",
        "",
        f"{len(entries)} architectures are installed. Every one takes any encoder of",
        "`segcore list encoders` (within the needs listed), `aux_params` for a classification",
        "head, and loads the state dict of the SMP 0.6.0 model of the same name and options.",
        "",
        "| name | class | description |",
        "| --- | --- | --- |",
    ]
    for entry in entries:
        lines.append(f"| `{entry.spec.name}` | `{entry.spec.class_name}` | "
                     f"{entry.spec.description} |")
    lines.append("")
    for entry in entries:
        lines += _architecture_section(entry)
    return "\n".join(lines).rstrip() + "\n"


def render_encoders() -> str:
    from segcore.registry import get_registry

    entries = get_registry().entries("encoders")
    families = sorted({entry.spec.family for entry in entries})
    lines = [
        "# Encoders",
        "",
        "<!-- Generated by docs/generate.py from the installed encoder plugins; do not edit",
        "     by hand (`nox -s docs` rewrites it, a test fails when it is stale). -->",
        "",
        f"{len(entries)} encoder names in {len(families)} families are installed; "
        "`segcore list encoders` shows",
        "the same columns. Any timm model is also available as `tu-<timm name>` (segcore-timm).",
        "",
        "- **weights**: the `encoder_weights` tags (the first is the default of",
        "  `encoder_weights=True`); each loads a file pinned to a revision, checked and cached",
        "  (see `segcore info NAME` for the sources and preprocessing).",
        "- **parameters**: the encoder's size as documented, in millions.",
        "- **dilation**: whether `output_stride` 16 and 8 work (DeepLabV3/V3+ need it); the",
        "  others raise `EncoderCapabilityError`.",
        "",
        "| family | name | weights | parameters | dilation | package |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in sorted(entries, key=lambda e: (e.spec.family.lower(), e.spec.name)):
        spec = entry.spec
        tags = ", ".join(f"`{tag}`" for tag in spec.weights) or "-"
        millions = f"{spec.params_millions:g}M" if spec.params_millions is not None else "-"
        dilation = "yes" if spec.supports_dilation else "no"
        lines.append(f"| {spec.family} | `{spec.name}` | {tags} | {millions} | {dilation} | "
                     f"{entry.distribution or entry.plugin} |")
    return "\n".join(lines).rstrip() + "\n"


EXPORT_RESULTS = DOCS.parent / "tests" / "integration" / "export_results.json"
EXPORT_METHODS = {
    "torch.compile": (
        "`torch.compile(model, fullgraph=True, backend=\"eager\")`: TorchDynamo captures the "
        "whole forward pass as one graph (a graph break is an error), run with eager kernels, "
        "at the first shape only. `backend=\"eager\"` checks graph capture at a price the CI "
        "can pay on CPU (code generation by the default backend, inductor, is checked on the "
        "models of the last table); dynamic shapes are what the torch.export and ONNX columns "
        "check."
    ),
    "torch.export": (
        "`torch.export.export(model, (x,), dynamic_shapes=...)` with `Dim(\"batch\")` for the "
        "batch and `32 * Dim(...)` for height and width (any multiple of 32 up to 1024); the "
        "exported program (`.module()`) runs at both shapes."
    ),
    "torch.jit.script": "`torch.jit.script(model)`, run at both shapes.",
    "torch.jit.trace": (
        "`torch.jit.trace(model, x)` at the first shape, run at both (the trace must not have "
        "baked the sizes in)."
    ),
    "onnx": (
        "`torch.onnx.export(model, (x,), path, dynamo=True, optimize=False, "
        "dynamic_shapes=...)` (the same dynamic dimensions as torch.export; the exporter needs "
        "onnxscript), run by onnxruntime's CPU provider at both shapes. `optimize=False` "
        "skips onnxscript's graph optimiser, which takes longer than the export (onnxruntime "
        "optimises the graph when it loads it)."
    ),
}
EXPORT_ENCODERS = {
    "resnet18": (
        "segcore's ResNet encoder (segcore-resnet); it stands in for resnet34, the same code "
        "with fewer blocks, to keep the matrix within the CI's time budget"
    ),
    "tu-resnet18": "a timm CNN (segcore-timm)",
    "tu-convnext_atto": (
        "a timm ConvNeXt, the transformer-style layout: features from reduction 4, with a "
        "0-channel placeholder at reduction 2"
    ),
}
EXPORT_TITLES = {"onnx": "ONNX"}


def _shape(shape: list[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def render_export() -> str:
    import json

    document = json.loads(EXPORT_RESULTS.read_text(encoding="utf-8"))
    cells = document["cells"]
    methods = document["methods"]
    versions = ", ".join(f"{name} {version}" for name, version in document["versions"].items())
    notes: dict[str, int] = {}

    def mark(entry: dict) -> str:
        if entry["outcome"] == "pass":
            return "✓"
        text = entry.get("reason") or f"Fails (not a known limit): {entry.get('error', '')}"
        number = notes.setdefault(text, len(notes) + 1)
        return f"✗ [^{number}]"

    grid: dict[tuple[str, str], dict[str, dict]] = {}
    for entry in cells:
        grid.setdefault((entry["architecture"], entry["encoder"]), {})[entry["method"]] = entry
    default_inputs = None
    other_inputs: dict[str, list] = {}
    for entry in cells:
        if entry["method"] in methods and entry.get("inputs"):
            if default_inputs is None:
                default_inputs = entry["inputs"]
            if entry["inputs"] != default_inputs:
                other_inputs.setdefault(entry["architecture"], entry["inputs"])
    first, second = default_inputs or ([2, 3, 64, 64], [1, 3, 96, 128])
    shapes = (f"`{_shape(first)}`, the shape each program is made with, and `{_shape(second)}`, "
              f"another batch size and image size")
    if other_inputs:
        shapes += "; " + "; ".join(
            f"`{_shape(inputs[0])}` and `{_shape(inputs[1])}` for `{name}`, which needs larger "
            f"images" for name, inputs in sorted(other_inputs.items()))
    lines = [
        "# Export",
        "",
        "<!-- Generated by docs/generate.py from tests/integration/export_results.json; do not",
        "     edit by hand (`nox -s docs` runs the export tests, then rewrites it; a test fails",
        "     when it is stale). -->",
        "",
        "Which ways of running a model outside eager PyTorch work, for every installed",
        "architecture with three encoders. Each cell is a test of",
        "`tests/integration/test_export.py`; this page shows the outcomes of its last run",
        f"({versions}).",
        "",
        f"✓: works; the outputs are within {document['tolerance']:g} of eager mode (largest "
        f"absolute difference). ✗: does not work there, for the reason in the note (the test "
        f"is an expected failure, so it turns red when the cell starts working).",
        "",
        "Every cell builds the model with `encoder_weights=None, classes=2` in eval mode and",
        f"runs it at two input shapes: {shapes}.",
        "",
        "| method | what the test does |",
        "| --- | --- |",
        *(f"| {EXPORT_TITLES.get(m, m)} | {EXPORT_METHODS.get(m, '')} |" for m in methods),
        "",
        "Encoders: " + "; ".join(f"`{name}`: {EXPORT_ENCODERS.get(name, '')}"
                                  for name in document["encoders"]) + ".",
        "",
        "| architecture | encoder | " + " | ".join(EXPORT_TITLES.get(m, m) for m in methods)
        + " |",
        "| --- | --- |" + " --- |" * len(methods),
    ]
    for (architecture, encoder), row in grid.items():
        if not any(method in row for method in methods):
            continue
        marks = [mark(row[m]) if m in row else "" for m in methods]
        lines.append(f"| `{architecture}` | `{encoder}` | " + " | ".join(marks) + " |")
    extra = sorted({entry["method"] for entry in cells} - set(methods))
    for method in extra:
        lines += ["", f"{method}: `torch.compile(model, fullgraph=True)` with the default backend",
                  "(inductor generates and compiles C++ for the CPU; tens of seconds per model, so",
                  "one cell), run at the first shape.", "",
                  f"| architecture | encoder | {method} |", "| --- | --- | --- |"]
        for (architecture, encoder), row in grid.items():
            if method in row:
                lines.append(f"| `{architecture}` | `{encoder}` | {mark(row[method])} |")
    if notes:
        lines.append("")
        lines += [f"[^{number}]: {text}" for text, number in notes.items()]
    lines += [
        "",
        "Regenerate with `nox -s docs`: it runs the export tests with",
        "`SEGCORE_WRITE_EXPORT_RESULTS=1` (they record their outcomes in",
        "`tests/integration/export_results.json`), then `python docs/generate.py`.",
    ]
    return "\n".join(lines).rstrip() + "\n"


PAGES: dict[str, Callable[[], str]] = {
    "architectures.md": render_architectures,
    "export.md": render_export,
    "encoders.md": render_encoders,
}


def main(argv: list[str]) -> int:
    stale = []
    for name, render in PAGES.items():
        path = DOCS / name
        text = render()
        if "--check" in argv:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run python docs/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
