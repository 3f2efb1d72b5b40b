"""The merged catalogue of everything the installed plugins provide.

Lookups by exact name, wildcard listing (fnmatch), close-match suggestions, the ``pip install``
hint for a documented name whose package is missing, and duplicate detection.
"""

from __future__ import annotations

import fnmatch
import threading
from typing import Any

import attrs

from segcore import _catalog
from segcore.errors import DuplicateNameError, UnknownNameError, did_you_mean
from segcore.plugins import get_plugin_manager
from segcore.specs import KINDS, EncoderSpec

_SINGULAR = {
    "encoders": "encoder",
    "architectures": "architecture",
    "heads": "head",
    "losses": "loss",
    "metrics": "metric",
    "commands": "command",
}

_KNOWN_LOSSES = ("jaccard", "dice", "tversky", "focal", "lovasz", "soft_bce", "soft_ce", "mcc")
_KNOWN_METRICS = (
    "fbeta_score", "f1_score", "iou_score", "accuracy", "precision", "recall", "sensitivity",
    "specificity", "balanced_accuracy", "positive_predictive_value", "negative_predictive_value",
    "false_negative_rate", "false_positive_rate", "false_discovery_rate", "false_omission_rate",
    "positive_likelihood_ratio", "negative_likelihood_ratio",
)


@attrs.frozen
class Entry:
    """A spec with the plugin that provided it."""

    spec: Any
    plugin: str
    distribution: str | None


class Registry:
    """Specs of one process, collected from the plugin manager on first use."""

    def __init__(self) -> None:
        manager = get_plugin_manager()
        self._entries: dict[str, dict[str, Entry]] = {}
        self._resolved: dict[str, Entry] = {}
        for kind, (spec_class, hook_name) in KINDS.items():
            table: dict[str, Entry] = {}
            for plugin_name, spec in manager.collect(hook_name):
                if not isinstance(spec, spec_class):
                    manager._hook_failed(
                        plugin_name, hook_name,
                        TypeError(
                            f"{hook_name} must return {spec_class.__name__} objects, got "
                            f"{type(spec).__name__}"
                        ),
                    )
                    continue
                entry = Entry(spec, plugin_name, manager.distribution_of(plugin_name))
                if spec.name in table:
                    other = table[spec.name]
                    raise DuplicateNameError(
                        f"the {_SINGULAR[kind]} name {spec.name!r} is provided by two plugins: "
                        f"{_describe(other)} and {_describe(entry)}. Uninstall one of them, or "
                        f"block one with SEGCORE_DISABLE_PLUGINS={entry.plugin}."
                    )
                table[spec.name] = entry
            self._entries[kind] = table

    # -- queries ---------------------------------------------------------------------------
    def names(self, kind: str, pattern: str | None = None) -> list[str]:
        table = self._table(kind)
        names = sorted(table)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def entries(self, kind: str) -> list[Entry]:
        table = self._table(kind)
        return [table[name] for name in sorted(table)]

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

    def _resolve_encoder(self, name: str) -> Entry | None:
        if name in self._resolved:
            return self._resolved[name]
        manager = get_plugin_manager()
        answer = manager.resolve_encoder(name)
        if answer is None:
            return None
        plugin_name, spec = answer
        if not isinstance(spec, EncoderSpec):
            return None
        entry = Entry(spec, plugin_name, manager.distribution_of(plugin_name))
        self._resolved[name] = entry
        return entry

    def unknown(self, kind: str, name: Any) -> UnknownNameError:
        """The error for a name no installed plugin provides, with suggestions and a fix."""
        singular = _SINGULAR[kind]
        table = self._table(kind)
        if not isinstance(name, str):
            return UnknownNameError(f"{singular} name must be a string, got {name!r}")
        message = f"unknown {singular} {name!r}."
        package = _first_party_package(kind, name)
        failed = _failed_provider(package)
        if failed is not None:
            message += (
                f" It is provided by {package}, which is installed but failed to load: "
                f"{failed.error}. Run `segcore plugins` for details."
            )
        elif package is not None:
            message += f" It is provided by {package}: `pip install {package}`."
        else:
            message += did_you_mean(name, table)
            if not table:
                message += f" No plugin providing {kind} is installed."
            else:
                message += f" See `segcore list {kind}` for the {len(table)} installed names."
        return UnknownNameError(message)

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


def _first_party_package(kind: str, name: str) -> str | None:
    if kind == "losses" and name not in _KNOWN_LOSSES:
        return None
    if kind == "metrics" and name not in _KNOWN_METRICS:
        return None
    return _catalog.package_for(kind, name)


def _failed_provider(package: str | None) -> Any:
    if package is None:
        return None
    for record in get_plugin_manager().failures():
        if record.distribution and record.distribution.lower() == package.lower():
            return record
    return None


_lock = threading.RLock()
_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (built on first use)."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = Registry()
        return _registry


def reset() -> None:
    global _registry
    with _lock:
        _registry = None
