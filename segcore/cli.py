"""The ``segcore`` command (also ``python -m segcore``).

    segcore list [KIND] [PATTERN]   names of installed encoders, architectures, heads, losses...
    segcore info NAME               what a name is, which plugin provides it, options, weight tags
    segcore plugins                 every plugin: distribution, version, loaded / failed / blocked

Plugins add subcommands through the ``segcore_commands`` hook.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import attrs

from segcore.errors import SegcoreError, UnknownNameError
from segcore.plugins import STATUS_LOADED, get_plugin_manager
from segcore.registry import Entry, get_registry
from segcore.specs import KINDS, ArchitectureSpec, EncoderSpec, load

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
            for plugin_name in get_plugin_manager().open_encoder_providers():
                line = f"(plus open-ended names resolved by plugin {plugin_name!r}, e.g. tu-*)"
                print(f"  {line}" if len(kinds) > 1 else line, file=out)
    return 0


def _summary(entry: Entry) -> str:
    spec = entry.spec
    if isinstance(spec, EncoderSpec):
        tags = ",".join(spec.weights) or "-"
        dilation = " dilation" if spec.supports_dilation else ""
        return f"{spec.name:<28} {spec.family:<10} weights={tags}{dilation}"
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
        # report the most relevant error: an architecture-looking name, else an encoder
        kind = "architectures" if name.lower() in _architecture_names() else "encoders"
        raise registry.unknown(kind, name)
    return 0


def _architecture_names() -> set[str]:
    from segcore import _catalog

    return set(_catalog.ARCHITECTURE_PACKAGES)


def _print_info(kind: str, entry: Entry, out: TextIO) -> None:
    spec = entry.spec
    provider = entry.plugin + (f" ({entry.distribution})" if entry.distribution else "")
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
        print(f"  class: segcore.{spec.class_name}", file=out)
        print(f"  needs a dilatable encoder: {'yes' if spec.requires_dilation else 'no'}", file=out)
        options_class = load(spec.options)
        print("  options:", file=out)
        for field in attrs.fields(options_class):
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()
            print(f"    {field.name} = {default!r}", file=out)
    else:
        try:
            target = load(spec.factory)
            print(f"  signature: {spec.name}{inspect.signature(target)}", file=out)
        except (TypeError, ValueError):
            pass


def _plugins(arguments: argparse.Namespace, out: TextIO) -> int:
    records = get_plugin_manager().records.values()
    for record in records:
        where = record.distribution or "-"
        version = record.version or "-"
        line = f"{record.name:<24} {where:<22} {version:<10} {record.status}"
        if record.error:
            line += f": {record.error}"
        print(line, file=out)
        if arguments.verbose and record.details:
            print("    " + record.details.replace("\n", "\n    "), file=out)
    failed = [r for r in records if r.status != STATUS_LOADED]
    return 1 if arguments.strict and failed else 0


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="segcore", description="Build segmentation networks from names; inspect plugins."
    )
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

    for plugin_name, spec in get_plugin_manager().collect("segcore_commands"):
        if spec.name in handlers:
            print(f"segcore: plugin {plugin_name!r} tried to redefine command {spec.name!r}",
                  file=sys.stderr)
            continue
        try:
            sub = subparsers.add_parser(spec.name, help=spec.help)
            handlers[spec.name] = load(spec.factory)(sub)
        except Exception as error:  # a broken plugin command must not break the CLI
            print(f"segcore: command {spec.name!r} of plugin {plugin_name!r} failed: {error}",
                  file=sys.stderr)
    return parser, handlers


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser, handlers = build_parser()
    arguments = parser.parse_args(argv)
    if not arguments.command:
        parser.print_help(out)
        return 0
    handler = handlers[arguments.command]
    try:
        parameters = inspect.signature(handler).parameters
        result = handler(arguments, out) if len(parameters) >= 2 else handler(arguments)
    except SegcoreError as error:
        print(f"segcore: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
