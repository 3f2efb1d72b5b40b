"""The ``segcore`` command line under mistakes and faults (items 17, 18, 23, 24, 26).

Each row runs ``segcore.cli.main`` in process and checks the exit status and what was printed
(standard output and error together); no row may print a Python traceback.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

from catalogue import Case, CliResult, Context

from segcore.hookspecs import hookimpl


class _Failing(io.StringIO):
    """An output whose writes fail like a closed pipe or a full disk."""

    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


def _run(argv: Sequence[str], out: Any = None, plugin: Any = None,
         environment: dict[str, str] | None = None) -> Any:
    def call(context: Context) -> CliResult:
        from segcore import plugins
        from segcore.cli import main

        for name, value in (environment or {}).items():
            context.monkeypatch.setenv(name, value)
        plugins.reset()
        manager = plugins.get_plugin_manager(strict=False)
        if plugin is not None:
            manager.register_module(plugin, "hostile")
        captured = io.StringIO()
        output = out if out is not None else captured
        try:
            with contextlib.redirect_stderr(captured):
                code = main(list(argv), out=output)
        finally:
            if plugin is not None:
                manager.unregister("hostile")
        return CliResult(exit_code=code, output=captured.getvalue())

    return call


class _RaisingCommand:
    @hookimpl
    def segcore_commands(self) -> list[Any]:
        from segcore.specs import CommandSpec

        return [CommandSpec(name="explode", factory="cases.cli:explode_command")]


def explode_command(parser: Any) -> Any:
    """A command whose handler raises (referenced by ``_RaisingCommand``)."""

    def handler(arguments: Any) -> int:
        raise ZeroDivisionError("the command divided by zero")

    return handler


class _RaisingHook:
    @hookimpl
    def segcore_encoders(self) -> list[Any]:
        raise RuntimeError("hook exploded")


class _GarbageHook:
    @hookimpl
    def segcore_losses(self) -> Any:
        return "dice"


class _TakenCommand:
    @hookimpl
    def segcore_commands(self) -> list[Any]:
        from segcore.specs import CommandSpec

        return [CommandSpec(name="list", factory="cases.cli:explode_command")]


class _BrokenCommandFactory:
    @hookimpl
    def segcore_commands(self) -> list[Any]:
        from segcore.specs import CommandSpec

        return [CommandSpec(name="ghost", factory="segcore_ghost.cli:command")]


STRICT = {"SEGCORE_STRICT_PLUGINS": "1"}


def _strict_case(case_id: str, argv: list[str], words: tuple[str, ...]) -> Case:
    """``segcore ARGV`` with a failing plugin and SEGCORE_STRICT_PLUGINS=1: it exits 1."""
    return Case(id=case_id, item="7.18",
                description=f"SEGCORE_STRICT_PLUGINS=1 and a failing plugin: segcore {argv[0]}",
                call=_run(argv, plugin=_RaisingHook(), environment=STRICT), exit_code=1,
                words=words)

CASES: list[Case] = [
    Case(id="cli-plugins-shows-raising-hook", item="7.17",
         description="segcore plugins with a plugin whose hook raises",
         call=_run(["plugins"], plugin=_RaisingHook()), exit_code=0,
         words=("hostile", "failed", "segcore_encoders", "hook exploded")),
    Case(id="cli-plugins-shows-garbage-hook", item="7.17",
         description="segcore plugins with a plugin whose hook returns a string",
         call=_run(["plugins"], plugin=_GarbageHook()), exit_code=0,
         words=("hostile", "failed", "returned str")),
    Case(id="cli-plugins-strict-exits-1", item="7.17",
         description="segcore plugins --strict with a failing plugin",
         call=_run(["plugins", "--strict"], plugin=_RaisingHook()), exit_code=1,
         words=("hostile", "failed")),
    _strict_case("cli-strict-env-list-exits-1", ["list"],
                 words=("error", "hostile", "hook exploded")),
    _strict_case("cli-strict-env-info-exits-1", ["info", "segmentation"],
                 words=("error", "hostile")),
    _strict_case("cli-strict-env-plugins-still-lists", ["plugins"],
                 words=("hostile", "failed", "segcore.core", "loaded")),
    Case(id="cli-plugin-command-raises", item="7.23",
         description="a plugin's command raises ZeroDivisionError",
         call=_run(["explode"], plugin=_RaisingCommand()), exit_code=1,
         words=("plugin 'hostile' command 'explode' failed", "divided by zero", "--debug")),
    Case(id="cli-plugin-command-takes-a-builtin-name", item="7.23",
         description="a plugin's command is named 'list'",
         call=_run(["plugins"], plugin=_TakenCommand()), exit_code=0,
         words=("hostile", "built-in segcore command")),
    Case(id="cli-plugin-command-factory-missing", item="7.22",
         description="a plugin's command factory cannot be imported",
         call=_run(["plugins"], plugin=_BrokenCommandFactory()), exit_code=0,
         words=("ghost", "unavailable", "segcore_ghost.cli:command")),
    Case(id="cli-list-to-a-closed-pipe", item="7.26",
         description="segcore list | head (the reader went away)",
         call=_run(["list"], out=_Failing(BrokenPipeError(32, "Broken pipe"))), exit_code=1,
         words=()),
    Case(id="cli-list-to-a-full-disk", item="7.26", description="segcore list > /dev/full",
         call=_run(["list"], out=_Failing(OSError(28, "No space left on device"))), exit_code=1,
         words=("could not write the output", "No space left")),
    Case(id="cli-info-unknown-name", item="7.24", description="segcore info resnet43",
         call=_run(["info", "resnet43"]), exit_code=2,
         words=("unknown encoder", "resnet34"), requires=("segcore_resnet",)),
    Case(id="cli-info-unknown-timm-model-no-pip", item="7.24",
         description="segcore info tu-notamodel with segcore-timm installed",
         call=_run(["info", "tu-notamodel"]), exit_code=2,
         words=("tu-notamodel",), requires=("segcore_timm",)),
    Case(id="cli-info-blocked-plugin", item="7.24",
         description="segcore info unet with segcore-unet blocked",
         call=_run(["info", "unet"], environment={"SEGCORE_DISABLE_PLUGINS": "unet"}),
         exit_code=2, words=("blocked by SEGCORE_DISABLE_PLUGINS",), requires=("segcore_unet",)),
    Case(id="cli-list-unknown-kind", item="7.26", description="segcore list decoders",
         call=_run(["list", "decoders"]), exit_code=2, words=("invalid choice",)),
    Case(id="cli-unknown-command", item="7.26", description="segcore trian",
         call=_run(["trian"]), exit_code=2, words=("invalid choice",)),
]


def _no_pip_advice(context: Context) -> CliResult:
    result = _run(["info", "tu-notamodel"])(context)
    if "pip install" in result.output:
        return CliResult(exit_code=99, output="pip advice given: " + result.output)
    return result


CASES.append(Case(id="cli-info-timm-no-install-advice", item="7.24",
                  description="segcore info tu-notamodel does not advise pip install",
                  call=_no_pip_advice, exit_code=2, words=("tu-notamodel",),
                  requires=("segcore_timm",)))
