"""The README's two commands, ``./tasks demo`` and ``./tasks tests``, and what CI runs.

``.ci/run`` must run the README's test command; ``./tasks`` must name real nox sessions and
never install into the system Python (it makes its own environment).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any("session" in ast.unparse(decorator) for decorator in node.decorator_list)}


def _readme_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].split() for line in block.strip().splitlines()]


def test_readme_two_commands_are_the_demo_and_the_tests() -> None:
    assert _readme_commands() == [["./tasks", "demo"], ["./tasks", "tests"]]


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    [line] = [line for line in script.splitlines() if line.startswith("./tasks ")]
    assert "tests" in line.split()[1:]
    assert set(line.split()[1:]) <= _sessions()


def test_sessions_named_in_the_readme_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    paragraph = readme.split("## Two commands", 1)[1].split("## ", 1)[0]
    named = set(re.findall(r"`(\w+)`", paragraph)) - {"tasks", "nox", "uv", "pip", "install"}
    assert {"demo", "tests"} <= _sessions()
    assert named <= _sessions(), named - _sessions()


def test_tasks_without_a_session_prints_its_usage() -> None:
    process = subprocess.run([str(ROOT / "tasks")], capture_output=True, text=True,
                             timeout=120)
    assert process.returncode == 2
    assert "usage: ./tasks SESSION" in process.stderr


def test_tasks_never_installs_into_the_system_python() -> None:
    script = (ROOT / "tasks").read_text()
    installs = [line.strip() for line in script.splitlines()
                if "pip install" in line and not line.lstrip().startswith(("#", "echo"))]
    assert installs, "the script installs nox and uv somewhere"
    for line in installs:
        assert line.startswith('"$TOOLS/venv/bin/python" -m pip') or "--target" in line, line
