"""Hook implementations only: describe the command, reference its factory lazily."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import CommandSpec


@hookimpl
def segcore_commands() -> list[CommandSpec]:
    return [
        CommandSpec(
            name="count-params",
            factory="segcore_example_command.command:configure",
            help="build a model by name and print its parameter count",
        )
    ]
