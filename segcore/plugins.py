"""Plugin discovery and loading.

Plugins are entry points in the group ``segcore``. Each is loaded on its own: a plugin that
fails to import, whose hooks do not match the contract, or whose hook raises, is recorded (see
``segcore plugins``) and the others keep working.

Environment variables:
    SEGCORE_DISABLE_PLUGINS: comma-separated entry-point or distribution names that are never
        imported (``SEGCORE_DISABLE_PLUGINS=timm,segcore-deeplab``).
    SEGCORE_STRICT_PLUGINS: ``1`` turns every plugin failure into a ``PluginLoadError``.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import attrs
import pluggy

from segcore import hookspecs
from segcore.errors import PluginLoadError, SegcoreError

ENTRY_POINT_GROUP = "segcore"
CORE_PLUGIN_NAME = "segcore.core"
DISABLE_VARIABLE = "SEGCORE_DISABLE_PLUGINS"
STRICT_VARIABLE = "SEGCORE_STRICT_PLUGINS"

STATUS_LOADED = "loaded"
STATUS_FAILED = "failed"
STATUS_BLOCKED = "blocked"


@attrs.frozen
class PluginRecord:
    """What happened to one plugin: loaded, failed (with the error) or blocked."""

    name: str
    distribution: str | None
    version: str | None
    module: str | None
    status: str
    error: str | None = None
    details: str | None = None


def _blocked_names() -> set[str]:
    raw = os.environ.get(DISABLE_VARIABLE, "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def strict_mode() -> bool:
    return os.environ.get(STRICT_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def _iter_entry_points() -> Iterator[Any]:
    import importlib_metadata

    seen: set[tuple[str, str]] = set()
    for entry_point in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (entry_point.name, entry_point.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        yield entry_point


class PluginManager:
    """Loads the plugins once and answers hook calls, isolating each plugin's failures."""

    def __init__(self) -> None:
        self._manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._manager.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._hook_failures: list[PluginRecord] = []

    # -- loading -------------------------------------------------------------------------
    def load_core(self) -> None:
        from segcore import heads

        self._register(heads, CORE_PLUGIN_NAME, distribution="segcore", version=_version())

    def load_entry_points(self) -> None:
        blocked = _blocked_names()
        for entry_point in _iter_entry_points():
            distribution = getattr(entry_point, "dist", None)
            dist_name = distribution.name if distribution is not None else None
            dist_version = distribution.version if distribution is not None else None
            names = {entry_point.name.lower()}
            if dist_name:
                names.add(dist_name.lower())
            if names & blocked:
                self.records[entry_point.name] = PluginRecord(
                    entry_point.name, dist_name, dist_version, entry_point.value, STATUS_BLOCKED,
                    error=f"disabled by {DISABLE_VARIABLE}",
                )
                continue
            if entry_point.name in self.records:
                self._fail(
                    entry_point.name, dist_name, dist_version, entry_point.value,
                    ValueError(
                        f"entry point name {entry_point.name!r} is used by two distributions: "
                        f"{self.records[entry_point.name].distribution} and {dist_name}"
                    ),
                    key=f"{entry_point.name} ({dist_name})",
                )
                continue
            try:
                module = entry_point.load()
            except BaseException as error:
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                self._fail(entry_point.name, dist_name, dist_version, entry_point.value, error)
                continue
            self._register(module, entry_point.name, dist_name, dist_version)

    def register_module(self, module: Any, name: str) -> None:
        """Register a module or object directly (used by tests and by embedding apps)."""
        self._register(module, name, distribution=None, version=None)

    def _register(
        self, module: Any, name: str, distribution: str | None, version: str | None
    ) -> None:
        module_name = getattr(module, "__name__", repr(module))
        try:
            self._manager.register(module, name=name)
        except pluggy.PluginValidationError as error:
            self._fail(name, distribution, version, module_name, error)
            return
        except ValueError as error:  # already registered
            self._fail(name, distribution, version, module_name, error)
            return
        self.records[name] = PluginRecord(name, distribution, version, module_name, STATUS_LOADED)

    def _fail(
        self,
        name: str,
        distribution: str | None,
        version: str | None,
        module: str | None,
        error: BaseException,
        key: str | None = None,
    ) -> None:
        record = PluginRecord(
            name, distribution, version, module, STATUS_FAILED,
            error=f"{type(error).__name__}: {error}",
            details="".join(traceback.format_exception(error)),
        )
        self.records[key or name] = record
        if strict_mode():
            raise PluginLoadError(
                f"plugin {name!r} ({distribution or 'unknown distribution'}) failed to load: "
                f"{record.error}. Unset {STRICT_VARIABLE} to skip broken plugins, or block it "
                f"with {DISABLE_VARIABLE}={name}."
            ) from error

    # -- calling -------------------------------------------------------------------------
    def collect(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call every implementation of a list-returning hook on its own.

        Returns ``(plugin name, item)`` pairs. A plugin whose hook raises or returns something
        that is not a list is recorded as failed; the other plugins' answers are kept.
        """
        hook = getattr(self._manager.hook, hook_name)
        results: list[tuple[str, Any]] = []
        for implementation in reversed(hook.get_hookimpls()):  # registration order
            plugin_name = implementation.plugin_name
            try:
                answer = implementation.function()
                if answer is None:
                    continue
                if not isinstance(answer, list | tuple):
                    raise TypeError(
                        f"hook {hook_name} must return a list of specs, got {type(answer).__name__}"
                    )
            except Exception as error:
                self._hook_failed(plugin_name, hook_name, error)
                continue
            results.extend((plugin_name, item) for item in answer)
        return results

    def resolve_encoder(self, name: str) -> tuple[str, Any] | None:
        """Ask the ``segcore_resolve_encoder`` implementations one by one (first answer wins)."""
        hook = self._manager.hook.segcore_resolve_encoder
        for implementation in reversed(hook.get_hookimpls()):
            try:
                answer = implementation.function(name=name)
            except SegcoreError:  # a deliberate answer, e.g. an unknown name with suggestions
                raise
            except Exception as error:
                self._hook_failed(implementation.plugin_name, "segcore_resolve_encoder", error)
                continue
            if answer is not None:
                return implementation.plugin_name, answer
        return None

    def open_encoder_providers(self) -> list[str]:
        """Plugins that resolve open-ended encoder names (``segcore_resolve_encoder``)."""
        hook = self._manager.hook.segcore_resolve_encoder
        return [implementation.plugin_name for implementation in hook.get_hookimpls()]

    def _hook_failed(self, plugin_name: str, hook_name: str, error: Exception) -> None:
        previous = self.records.get(plugin_name)
        record = PluginRecord(
            plugin_name,
            previous.distribution if previous else None,
            previous.version if previous else None,
            previous.module if previous else None,
            STATUS_FAILED,
            error=f"hook {hook_name} raised {type(error).__name__}: {error}",
            details="".join(traceback.format_exception(error)),
        )
        self.records[plugin_name] = record
        if strict_mode():
            raise PluginLoadError(
                f"plugin {plugin_name!r}: {record.error}. Unset {STRICT_VARIABLE} to skip it."
            ) from error

    def failures(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.status == STATUS_FAILED]

    def distribution_of(self, plugin_name: str) -> str | None:
        record = self.records.get(plugin_name)
        return record.distribution if record else None


def _version() -> str | None:
    try:
        import importlib_metadata

        return importlib_metadata.version("segcore")
    except Exception:
        return None


_lock = threading.RLock()
_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    with _lock:
        if _manager is None:
            manager = PluginManager()
            manager.load_core()
            manager.load_entry_points()
            _manager = manager
        return _manager


def reset() -> None:
    """Forget loaded plugins; the next call discovers them again (after installing one)."""
    global _manager
    with _lock:
        _manager = None
    from segcore import registry

    registry.reset()


def plugin_records() -> list[PluginRecord]:
    """Every plugin the manager saw, with its status (loaded, failed, blocked)."""
    return list(get_plugin_manager().records.values())
