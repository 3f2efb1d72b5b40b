"""The ``segcore`` command (also ``python -m segcore``).

    segcore list [KIND] [PATTERN]   names of installed encoders, architectures, heads, losses...
    segcore info NAME               what a name is, which plugin provides it, options, weight tags
    segcore plugins                 every plugin: distribution, version, status (loaded, failed,
                                    blocked, incompatible) and why

Plugins add subcommands through the ``segcore_commands`` hook. Exit status: 0 on success, 1
when a plugin (or a plugin's command) failed, 2 for a usage error or a segcore error; ``--debug``
shows tracebacks.
"""

from __future__ import annotations

import argparse
import errno
import inspect
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, TextIO

import attrs

from segcore.errors import PluginLoadError, SegcoreError, UnknownNameError
from segcore.plugins import STATUS_LOADED, get_plugin_manager
from segcore.registry import Entry, get_registry
from segcore.specs import KINDS, ArchitectureSpec, EncoderSpec

LISTABLE = tuple(kind for kind in KINDS if kind != "commands")


def _list(arguments: argparse.Namespace, out: TextIO) -> int:
    registry = get_registry()
    kinds = [arguments.kind] if arguments.kind else list(LISTABLE)
    for kind in kinds:
        names = registry.names(kind, arguments.pattern)
        if len(kinds) > 1:
            print(f"{kind} ({len(names)}):", file=out)
        for name in names:
            entry = registry.entry(kind, name)
            print(f"  {_summary(entry)}" if len(kinds) > 1 else _summary(entry), file=out)
        if kind == "encoders" and not arguments.pattern:
            for key in get_plugin_manager().open_encoder_providers():
                record = get_plugin_manager().record_of(key)
                plugin_name = record.name if record is not None else key
                line = f"(plus open-ended names resolved by plugin {plugin_name!r}, e.g. tu-*)"
                print(f"  {line}" if len(kinds) > 1 else line, file=out)
    return 0


def _summary(entry: Entry) -> str:
    spec = entry.spec
    if isinstance(spec, EncoderSpec):
        tags = ",".join(spec.weights) or "-"
        millions = f"{spec.params_millions:g}M" if spec.params_millions is not None else "-"
        dilation = "dilation" if spec.supports_dilation else "-"
        package = entry.distribution or entry.plugin
        return (f"{spec.name:<28} {spec.family:<22} {millions:>7}  {dilation:<8}  "
                f"{package:<26} weights={tags}")
    if isinstance(spec, ArchitectureSpec):
        return f"{spec.name:<16} {spec.class_name:<14} {spec.description}"
    return f"{spec.name:<28} {getattr(spec, 'description', '')}"


def _info(arguments: argparse.Namespace, out: TextIO) -> int:
    registry = get_registry()
    name = arguments.name
    found = False
    for kind in LISTABLE:
        try:
            entry = registry.entry(kind, name)
        except UnknownNameError:
            continue
        found = True
        _print_info(kind, entry, out)
    if not found:
        # report the most relevant error: an architecture-looking name, else an encoder (asking
        # the resolvers again gives their own answer, e.g. timm's close matches for tu- names)
        if name.lower() in _architecture_names():
            raise registry.unknown("architectures", name)
        registry.entry("encoders", name)
    return 0


def _architecture_names() -> set[str]:
    from segcore import _catalog

    return set(_catalog.ARCHITECTURE_PACKAGES)


def _print_info(kind: str, entry: Entry, out: TextIO) -> None:
    spec = entry.spec
    record = get_plugin_manager().record_of(entry.plugin)
    plugin_name = record.name if record is not None else entry.plugin
    provider = plugin_name + (f" ({entry.distribution})" if entry.distribution else "")
    print(f"{spec.name}: {kind[:-1] if kind != 'losses' else 'loss'} from plugin {provider}",
          file=out)
    if getattr(spec, "description", ""):
        print(f"  {spec.description}", file=out)
    if isinstance(spec, EncoderSpec):
        print(f"  family: {spec.family}", file=out)
        if spec.out_channels:
            print(f"  out_channels (depth 5): {tuple(spec.out_channels)}", file=out)
        print(f"  dilation (output_stride 8/16): {'yes' if spec.supports_dilation else 'no'}",
              file=out)
        if spec.params_millions is not None:
            print(f"  parameters: {spec.params_millions:g}M", file=out)
        print("  weights:", file=out)
        if not spec.weights:
            print("    (none: random initialisation only)", file=out)
        for tag, source in spec.weights.items():
            where = "delegated to the plugin" if source.delegate else (source.url or "no URL")
            print(f"    {tag}: {where}", file=out)
        for alias, target in spec.weight_aliases.items():
            print(f"    {alias}: alias of {target}", file=out)
    elif isinstance(spec, ArchitectureSpec):
        model_class = entry.load("model", kind)
        print(f"  class: segcore.{spec.class_name}", file=out)
        needs = "yes" if model_class.requires_dilation else "no"
        print(f"  needs a dilatable encoder: {needs}", file=out)
        options_class = model_class.options_class
        print("  options:", file=out)
        for field in attrs.fields(options_class):
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()
            print(f"    {field.name} = {default!r}", file=out)
    else:
        try:
            target = entry.load("factory", kind)
            print(f"  signature: {spec.name}{inspect.signature(target)}", file=out)
        except (TypeError, ValueError):
            pass


def _plugins(arguments: argparse.Namespace, out: TextIO) -> int:
    manager = get_plugin_manager(strict=False)
    try:  # run every plugin's hooks, so a hook that raises or returns garbage shows as failed
        get_registry()
    except PluginLoadError:
        pass  # strict mode: reported below through the exit status
    records = manager.records.values()
    for record in records:
        where = record.distribution or "-"
        version = record.version or "-"
        line = f"{record.name:<24} {where:<22} {version:<10} {record.status}"
        if record.error:
            line += f": {record.error}"
        print(line, file=out)
        if arguments.verbose and record.details:
            print("    " + record.details.replace("\n", "\n    "), file=out)
        if arguments.verbose and record.output:
            print("    printed: " + record.output.strip().replace("\n", "\n    "), file=out)
    failed = [r for r in records if r.status != STATUS_LOADED]
    return 1 if (arguments.strict or manager.strict) and failed else 0


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="segcore", description="Build segmentation networks from names; inspect plugins."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers: dict[str, Any] = {}

    listing = subparsers.add_parser("list", help="list installed names")
    listing.add_argument("kind", nargs="?", choices=LISTABLE, help="what to list (default: all)")
    listing.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'res*'")
    handlers["list"] = _list

    info = subparsers.add_parser("info", help="describe a name: plugin, options, weight tags")
    info.add_argument("name")
    handlers["info"] = _info

    plugins = subparsers.add_parser("plugins", help="every plugin and its status")
    plugins.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    plugins.add_argument("--strict", action="store_true",
                         help="exit with status 1 when a plugin failed or is blocked")
    handlers["plugins"] = _plugins

    manager = get_plugin_manager(strict=False)
    try:
        commands = get_registry().entries("commands")
    except PluginLoadError as error:  # strict mode: the built-in commands still work
        print(f"segcore: error: {error}", file=sys.stderr)
        commands = []
    for entry in commands:
        spec = entry.spec
        record = manager.record_of(entry.plugin)
        plugin_name = record.name if record is not None else entry.plugin
        if spec.name in handlers:
            manager.record_failure(
                entry.plugin, "segcore_commands",
                f"command {spec.name!r} is a built-in segcore command; choose another name",
                strict=False,
            )
            continue
        try:
            sub = subparsers.add_parser(spec.name, help=spec.help)
            handler = entry.load("factory", "commands")(sub)
            if not callable(handler):
                raise TypeError(f"its factory returned {handler!r}, not a handler function")
            handlers[spec.name] = _PluginCommand(plugin_name, spec.name, handler)
        except Exception as error:  # a broken plugin command must not break the CLI
            manager.record_failure(entry.plugin, "segcore_commands", error, strict=False)
            print(f"segcore: command {spec.name!r} of plugin {plugin_name!r} is unavailable: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
    return parser, handlers


class _PluginCommand:
    """A plugin's command handler, remembered with its plugin for error messages."""

    def __init__(self, plugin: str, name: str, handler: Any) -> None:
        self.plugin, self.name, self.handler = plugin, name, handler

    def __call__(self, arguments: argparse.Namespace, out: TextIO) -> int:
        parameters = inspect.signature(self.handler).parameters
        if len(parameters) >= 2:
            return self.handler(arguments, out)
        return self.handler(arguments)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (never raises for a user's mistake)."""
    out = out or sys.stdout
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv, out)
    except BrokenPipeError:
        # The reader went away (``segcore list | head``): stop quietly, as other tools do.
        _silence_stdout()
        return 1
    except OSError as error:
        if error.errno in (errno.EPIPE, errno.ENOSPC, errno.EIO):
            _silence_stdout()
            print(f"segcore: error: could not write the output: {error.strerror}",
                  file=sys.stderr)
            return 1
        raise
    except PluginLoadError as error:
        print(f"segcore: error: {error}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return 1


def _main(argv: Sequence[str] | None, out: TextIO) -> int:
    parser, handlers = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere: `segcore CMD ... --debug` too
    argv = [argument for argument in argv if argument != "--debug"]
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, or a usage error argparse already printed
        return exit_request.code if isinstance(exit_request.code, int) else 2
    if not arguments.command:
        parser.print_help(out)
        out.flush()
        return 0
    arguments.debug = debug
    handler = handlers[arguments.command]
    try:
        result = handler(arguments, out)
        out.flush()
    except SegcoreError as error:
        if isinstance(error, PluginLoadError):
            raise
        print(f"segcore: error: {error}", file=sys.stderr)
        if arguments.debug:
            traceback.print_exc()
        return 2
    except (BrokenPipeError, OSError, KeyboardInterrupt):
        raise
    except Exception as error:
        if not isinstance(handler, _PluginCommand):
            raise
        print(f"segcore: error: plugin {handler.plugin!r} command {handler.name!r} failed: "
              f"{type(error).__name__}: {error}" + ("" if arguments.debug else
                                                    " (run with --debug for the traceback)"),
              file=sys.stderr)
        if arguments.debug:
            traceback.print_exc()
        return 1
    return int(result or 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
