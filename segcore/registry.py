"""The merged catalogue of everything the installed plugins provide.

Lookups by exact name, wildcard listing (fnmatch), close-match suggestions, the ``pip install``
hint for a documented name whose package is missing, duplicate detection, and loading of the
code a spec references (``"module:attribute"``) with errors that name the plugin.

The registry is rebuilt whenever the plugin manager's set of plugins changes (its
``generation``).
"""

from __future__ import annotations

import fnmatch
import threading
from typing import Any

import attrs

from segcore import _catalog
from segcore.errors import BrokenPluginError, DuplicateNameError, UnknownNameError, did_you_mean
from segcore.plugins import (
    DISABLE_VARIABLE,
    STATUS_BLOCKED,
    STATUS_FAILED,
    STATUS_INCOMPATIBLE,
    STATUS_LOADED,
    PluginRecord,
    get_plugin_manager,
)
from segcore.specs import KINDS, SINGULAR, load


@attrs.frozen
class Entry:
    """A spec with the plugin that provided it (``plugin`` is the plugin's unique key)."""

    spec: Any
    plugin: str
    distribution: str | None

    def load(self, attribute: str, kind: str = "") -> Any:
        """Import the code the spec references in ``attribute`` (``"factory"``, ``"model"``).

        Raises ``BrokenPluginError`` naming the name, the plugin and the reference when the
        reference cannot be imported.
        """
        reference = getattr(self.spec, attribute)
        try:
            return load(reference)
        except (ImportError, AttributeError) as error:
            what = f"{SINGULAR.get(kind, 'name')} {self.spec.name!r}"
            raise BrokenPluginError(
                f"{what} cannot be built: its {attribute} {reference!r} (from {_describe(self)}) "
                f"cannot be imported: {type(error).__name__}: {error}. The plugin is broken or "
                f"incompletely installed: reinstall it, or report this to its author."
            ) from error


class Registry:
    """Specs of one process, collected from the plugin manager on first use."""

    def __init__(self) -> None:
        manager = get_plugin_manager()
        # A plugin found failing while collecting is unregistered (generation changes): collect
        # again so that it contributes nothing at all. Each round removes at least one plugin.
        while True:
            generation = manager.generation
            self._entries = self._collect(manager)
            if manager.generation == generation:
                break
        self.generation = (manager.identity, manager.generation)
        self._resolved: dict[str, Entry] = {}
        manager.raise_if_strict()

    @staticmethod
    def _collect(manager: Any) -> dict[str, dict[str, Entry]]:
        entries: dict[str, dict[str, Entry]] = {}
        for kind, (spec_class, hook_names) in KINDS.items():
            table: dict[str, Entry] = {}
            for hook_name in hook_names:
                for key, spec in manager.collect(hook_name, spec_class):
                    entry = Entry(spec, key, manager.distribution_of(key))
                    if spec.name in table:
                        other = table[spec.name]
                        if other.plugin == key:
                            continue  # a plugin implementing both architecture hooks
                        manager.record_failure(key, hook_name, DuplicateNameError(
                            f"the {SINGULAR[kind]} name {spec.name!r} is already provided by "
                            f"{_describe(other)}; {_describe(entry)} provides it too. Uninstall "
                            f"one of them, or block one with {DISABLE_VARIABLE}="
                            f"{_record_name(manager, key)}."
                        ))
                        continue
                    clashes = [alias for alias in getattr(spec, "aliases", ())
                               if alias in table]
                    if clashes:
                        other = table[clashes[0]]
                        manager.record_failure(key, hook_name, DuplicateNameError(
                            f"the alias {clashes[0]!r} of {SINGULAR[kind]} {spec.name!r} "
                            f"({_describe(entry)}) is already a name of {_describe(other)}. "
                            f"Uninstall one of them, or block one with {DISABLE_VARIABLE}="
                            f"{_record_name(manager, key)}."
                        ))
                        continue
                    table[spec.name] = entry
                    for alias in getattr(spec, "aliases", ()):
                        table[alias] = entry
            entries[kind] = table
        return entries

    # -- queries ---------------------------------------------------------------------------
    def names(self, kind: str, pattern: str | None = None) -> list[str]:
        """The names of ``kind`` (aliases are not listed), matching ``pattern`` if given."""
        table = self._table(kind)
        names = sorted(name for name, entry in table.items() if entry.spec.name == name)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def entries(self, kind: str) -> list[Entry]:
        table = self._table(kind)
        return [table[name] for name in sorted(table) if table[name].spec.name == name]

    def entry(self, kind: str, name: str) -> Entry:
        table = self._table(kind)
        if isinstance(name, str) and name in table:
            return table[name]
        if kind == "encoders" and isinstance(name, str):
            entry = self._resolve_encoder(name)
            if entry is not None:
                return entry
        raise self.unknown(kind, name)

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).spec

    def load(self, kind: str, name: str, attribute: str) -> Any:
        """The object a spec references (``registry.load("encoders", "resnet34", "factory")``)."""
        return self.entry(kind, name).load(attribute, kind)

    def _resolve_encoder(self, name: str) -> Entry | None:
        if name in self._resolved:
            return self._resolved[name]
        manager = get_plugin_manager()
        try:
            answer = manager.resolve_encoder(name)
        except UnknownNameError as error:
            raise UnknownNameError(str(error) + _failure_hint()) from None
        if answer is None:
            return None
        key, spec = answer
        entry = Entry(spec, key, manager.distribution_of(key))
        self._resolved[name] = entry
        return entry

    def unknown(self, kind: str, name: Any) -> UnknownNameError:
        """The error for a name no installed plugin provides, with suggestions and a fix."""
        singular = SINGULAR[kind]
        table = self._table(kind)
        if not isinstance(name, str):
            return UnknownNameError(f"{singular} name must be a string, got {name!r}")
        message = f"unknown {singular} {name!r}."
        package = _catalog.package_for(kind, name)
        records = _records_of(package) if package else []
        loaded = [r for r in records if r.status == STATUS_LOADED]
        blocked = [r for r in records if r.status == STATUS_BLOCKED]
        broken = [r for r in records if r.status in (STATUS_FAILED, STATUS_INCOMPATIBLE)]
        if broken:
            record = broken[0]
            state = "failed to load" if record.status == STATUS_FAILED else "is incompatible"
            message += (
                f" It is provided by {package}, which is installed but {state}: "
                f"{record.error}. Run `segcore plugins` for details."
            )
            return UnknownNameError(message)
        if blocked:
            message += (
                f" It is provided by {package}, which is installed but blocked by "
                f"{DISABLE_VARIABLE}; remove {blocked[0].name!r} from that variable to use it."
            )
            return UnknownNameError(message)
        if package is not None and not loaded:
            if _catalog.is_published(package):
                message += f" It is provided by {package}, which is not installed: " \
                           f"`pip install {package}`."
            else:
                message += (
                    f" It is a documented {singular} name, but no installed plugin provides it "
                    f"and its segcore package ({package}) is not installed (it is not released "
                    f"yet)."
                )
            return UnknownNameError(message + _failure_hint())
        message += did_you_mean(name, table)
        if not table:
            message += f" No plugin providing {kind} is installed."
        else:
            message += f" See `segcore list {kind}` for the {len(table)} installed names."
        return UnknownNameError(message + _failure_hint())

    def _table(self, kind: str) -> dict[str, Entry]:
        if kind not in self._entries:
            raise UnknownNameError(
                f"unknown kind {kind!r}; valid kinds are {', '.join(self._entries)}"
            )
        return self._entries[kind]


def _describe(entry: Entry) -> str:
    if entry.distribution:
        return f"plugin {entry.plugin!r} (distribution {entry.distribution})"
    return f"plugin {entry.plugin!r}"


def _record_name(manager: Any, key: str) -> str:
    record = manager.record_of(key)
    return record.name if record is not None else key


def _records_of(package: str) -> list[PluginRecord]:
    from segcore.environment import normalize_name

    wanted = normalize_name(package)
    return [
        record for record in get_plugin_manager(strict=False).records.values()
        if record.distribution and normalize_name(record.distribution) == wanted
    ]


def _failure_hint() -> str:
    """' Plugins that failed to load: ...' for unknown-name errors (empty when none failed)."""
    problems = get_plugin_manager(strict=False).problems()
    if not problems:
        return ""
    listed = "; ".join(
        f"{record.name!r} ({record.distribution or 'no distribution'}) {record.status}: "
        f"{record.error}" for record in problems
    )
    return (f" Note: plugins that failed to load may have provided it: {listed}. "
            f"Run `segcore plugins` for details.")


_lock = threading.RLock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, rebuilt when the set of plugins has changed."""
    global _registry
    manager = get_plugin_manager()
    with _lock:
        current = (manager.identity, manager.generation)
        if _registry is None or _registry.generation != current:
            _registry = Registry()
        return _registry
