"""Writes the documentation pages whose facts come from the code.

* docs/architectures.md: one section per installed architecture, from its spec, its class
  (docstring, constructor signature) and its options class.

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


PAGES: dict[str, Callable[[], str]] = {
    "architectures.md": render_architectures,
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
