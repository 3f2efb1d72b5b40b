"""The plugin guide (docs/plugins.md) documents the whole contract, and only the contract.

Fails when a hook of ``segcore.hookspecs`` is missing from the guide's reference or listed
with another signature, when a field of a spec class has no row (with a meaning) in its
class's table or a row names a field that does not exist, and when an example package the
guide names is missing from ``examples/plugins/`` (or one there is not in the guide).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import attrs
import pytest

from segcore import hookspecs, specs

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLES = ROOT / "examples" / "plugins"

SPEC_CLASSES = (
    specs.EncoderSpec,
    specs.WeightSource,
    specs.Preprocessing,
    specs.ArchitectureSpec,
    specs.HeadSpec,
    specs.LossSpec,
    specs.MetricSpec,
    specs.CommandSpec,
)

HOOKSPEC_ATTRIBUTE = f"{hookspecs.PROJECT_NAME}_spec"  # set by pluggy.HookspecMarker


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _hooks() -> dict[str, object]:
    return {
        name: function for name, function in vars(hookspecs).items()
        if inspect.isfunction(function) and hasattr(function, HOOKSPEC_ATTRIBUTE)
    }


def _annotation(annotation: object) -> str:
    # hookspecs uses ``from __future__ import annotations``: annotations are their source text
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def documented_signature(function) -> str:
    """``segcore_resolve_encoder(name: str) -> EncoderSpec | None``, as the source spells it."""
    signature = inspect.signature(function)
    parameters = []
    for parameter in signature.parameters.values():
        text = parameter.name
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(parameter.annotation)}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {parameter.default!r}"
        parameters.append(text)
    result = f"{function.__name__}({', '.join(parameters)})"
    if signature.return_annotation is not inspect.Signature.empty:
        result += f" -> {_annotation(signature.return_annotation)}"
    return result


def _section(text: str, heading: re.Pattern[str]) -> str | None:
    """The text under the first heading matching ``heading``, up to the next heading of the
    same or a higher level."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^(#+) ", line)
        if match and heading.search(line):
            level = len(match.group(1))
            body = []
            for following in lines[index + 1:]:
                other = re.match(r"^(#+) ", following)
                if other and len(other.group(1)) <= level:
                    break
                body.append(following)
            return "\n".join(body)
    return None


def _table_rows(section: str) -> dict[str, str]:
    """``{field: meaning}`` from rows ``| `field` | ... | meaning |`` (the last cell)."""
    rows = {}
    for line in section.splitlines():
        if not re.match(r"^\|\s*`\w+`\s*\|", line):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows[cells[0].strip("`")] = cells[-1] if len(cells) > 1 else ""
    return rows


def test_hooks_are_found():
    hooks = _hooks()
    assert set(hooks) == set(hookspecs.HOOKS), (
        "segcore.hookspecs.HOOKS and the functions marked @hookspec differ"
    )
    assert documented_signature(hooks["segcore_resolve_encoder"]) == (
        "segcore_resolve_encoder(name: str) -> EncoderSpec | None"
    )


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_every_hook_is_documented_with_its_signature(guide, name):
    signature = documented_signature(_hooks()[name])
    heading = re.compile(r"^#+ `" + re.escape(signature) + "`$")
    section = _section(guide, heading)
    assert section is not None, (
        f"docs/plugins.md has no reference heading '#### `{signature}`' for the hook {name} "
        f"(its signature in segcore/hookspecs.py)"
    )
    assert re.search(r"\bcalled\b", section, re.IGNORECASE), (
        f"docs/plugins.md: the reference of {name} does not say when it is called"
    )


@pytest.mark.parametrize("spec_class", SPEC_CLASSES, ids=lambda c: c.__name__)
def test_every_spec_field_is_documented(guide, spec_class):
    name = spec_class.__name__
    section = _section(guide, re.compile(r"^#+ `" + name + "`$"))
    assert section is not None, f"docs/plugins.md has no reference heading '#### `{name}`'"
    rows = _table_rows(section)
    fields = [field.name for field in attrs.fields(spec_class)]
    missing = [field for field in fields if field not in rows]
    assert not missing, f"docs/plugins.md: the table of {name} lacks the field(s) {missing}"
    empty = [field for field in fields if len(rows[field].split()) < 3]
    assert not empty, f"docs/plugins.md: the field(s) {empty} of {name} have no meaning"
    unknown = [row for row in rows if row not in fields]
    assert not unknown, (
        f"docs/plugins.md: the table of {name} lists {unknown}, which {name} does not have"
    )


def test_the_guide_is_for_this_contract_version(guide):
    version = hookspecs.CONTRACT_VERSION
    major = int(version.split(".")[0])
    assert f"contract {version}" in guide
    assert f'"segcore>={major}.0,<{major + 1}"' in guide


def test_every_example_package_named_in_the_guide_exists(guide):
    named = set(re.findall(r"examples/plugins/([A-Za-z0-9_.-]+)", guide))
    assert named, "docs/plugins.md names no example package"
    present = {path.name for path in EXAMPLES.iterdir() if (path / "pyproject.toml").is_file()}
    assert not named - present, f"named in docs/plugins.md, missing: {sorted(named - present)}"
    assert not present - named, f"not in docs/plugins.md: {sorted(present - named)}"
    for fixture in re.findall(r"tests/fixtures/([A-Za-z0-9_.-]+)", guide):
        assert (ROOT / "tests" / "fixtures" / fixture / "pyproject.toml").is_file(), fixture


@pytest.mark.parametrize(
    "package", sorted(path.name for path in EXAMPLES.iterdir() if path.is_dir())
)
def test_example_package_declares_the_contract_range_and_its_entry_point(package):
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    major = int(hookspecs.CONTRACT_VERSION.split(".")[0])
    project = tomllib.loads((EXAMPLES / package / "pyproject.toml").read_text())["project"]
    assert f"segcore>={major}.0,<{major + 1}" in project["dependencies"], package
    entry_points = project["entry-points"]["segcore"]
    assert len(entry_points) == 1, entry_points
    module = next(iter(entry_points.values()))
    assert (EXAMPLES / package / (module.replace(".", "/") + ".py")).is_file(), module
    assert (EXAMPLES / package / "conftest.py").is_file(), "pytest_plugins = ['segcore.testing']"
