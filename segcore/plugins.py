"""Plugin discovery, loading and hook calls.

Plugins are entry points in the group ``segcore``, identified by their distribution and entry
point together (two distributions may both name an entry point ``resnet``). Each is loaded on
its own: a plugin that is incompatible with this contract version, fails to import (any
exception, ``SystemExit`` included), implements a hook that does not exist, uses a hook
wrapper, or whose hook raises or returns garbage, is recorded (``segcore plugins``) and the
others keep working. What a plugin prints while it is imported or called is kept in its
record instead of reaching the output.

Environment variables:
    SEGCORE_DISABLE_PLUGINS: comma-separated entry-point or distribution names that are never
        imported (``SEGCORE_DISABLE_PLUGINS=timm,segcore-deeplab``; ``-``/``_``/``.`` and case
        do not matter). A name that matches no plugin is warned about.
    SEGCORE_STRICT_PLUGINS: true (1/yes/on...) turns every plugin failure into a
        ``PluginLoadError`` once loading is complete.
    SEGCORE_TRACE_PLUGINS: true logs every hook call with its plugin and duration (logger
        ``segcore.plugins``, to standard error).

Example::

    manager = get_plugin_manager()
    for record in manager.records.values():
        print(record.name, record.distribution, record.status, record.error or "")
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

import attrs
import pluggy

from segcore import hookspecs
from segcore.environment import env_flag, env_names, normalize_name
from segcore.errors import ConfigurationWarning, PluginLoadError, SegcoreError

ENTRY_POINT_GROUP = "segcore"
CORE_PLUGIN_NAME = "segcore.core"
DISABLE_VARIABLE = "SEGCORE_DISABLE_PLUGINS"
STRICT_VARIABLE = "SEGCORE_STRICT_PLUGINS"
TRACE_VARIABLE = "SEGCORE_TRACE_PLUGINS"

STATUS_LOADED = "loaded"
STATUS_FAILED = "failed"
STATUS_BLOCKED = "blocked"
STATUS_INCOMPATIBLE = "incompatible"

logger = logging.getLogger("segcore.plugins")


@attrs.frozen
class PluginRecord:
    """What happened to one plugin.

    Attributes:
        name: the entry-point name (``"resnet"``); ``key`` is unique, ``name`` need not be.
        distribution, version: the installed distribution that declares it.
        module: the module the entry point names.
        status: ``loaded``, ``failed``, ``blocked`` or ``incompatible``.
        error: one line saying why, for every status but ``loaded``.
        details: the traceback of a failure.
        output: what the plugin printed while it was imported or called.
        requires: the plugin's ``segcore`` requirement (its contract range), if any.
        key: the unique identifier, ``"<distribution>:<entry point>"`` (the pluggy name).
    """

    name: str
    distribution: str | None
    version: str | None
    module: str | None
    status: str
    error: str | None = None
    details: str | None = None
    output: str = ""
    requires: str | None = None
    key: str = ""


def strict_mode() -> bool:
    """Whether ``SEGCORE_STRICT_PLUGINS`` asks for plugin failures to be errors."""
    return env_flag(STRICT_VARIABLE)


def _iter_entry_points() -> Iterator[Any]:
    import importlib_metadata

    seen: set[tuple[str | None, str, str]] = set()
    entry_points = []
    for entry_point in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = getattr(entry_point, "dist", None)
        dist_name = distribution.name if distribution is not None else None
        key = (dist_name, entry_point.name, entry_point.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        entry_points.append(entry_point)

    from segcore import _catalog

    def order(entry_point: Any) -> tuple[int, str, str]:
        distribution = getattr(entry_point, "dist", None)
        dist_name = normalize_name(distribution.name) if distribution is not None else ""
        return (0 if _catalog.is_first_party(dist_name) else 1, dist_name, entry_point.name)

    yield from sorted(entry_points, key=order)


def _segcore_requirement(distribution: Any) -> str | None:
    """The ``segcore`` requirement of a distribution (``"segcore>=1.0,<2"``), if it has one."""
    from packaging.requirements import InvalidRequirement, Requirement

    for line in getattr(distribution, "requires", None) or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if normalize_name(requirement.name) != "segcore":
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        return str(requirement)
    return None


def _incompatibility(requirement: str | None, core_version: str | None) -> str | None:
    """Why a plugin requiring ``requirement`` cannot run with segcore ``core_version``."""
    if requirement is None or core_version is None:
        return None
    from packaging.requirements import Requirement

    specifier = Requirement(requirement).specifier
    if not specifier or specifier.contains(core_version, prereleases=True):
        return None
    return (
        f"written for segcore{specifier} (contract range), but segcore {core_version} is "
        f"installed (contract {hookspecs.CONTRACT_VERSION}). Install a version of the plugin "
        f"made for this segcore, or a segcore in its range."
    )


@contextlib.contextmanager
def _captured_output() -> Iterator[io.StringIO]:
    """Collect what a plugin prints, so it never mixes with segcore's own output."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def _describe_error(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit: the plugin called sys.exit({error.code!r})"
    message = str(error)
    if len(error.args) > 1 and isinstance(error.args[0], str):  # attrs validator errors
        message = error.args[0]
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class PluginManager:
    """Loads the plugins once and answers hook calls, isolating each plugin's failures.

    Public API: ``records`` (key -> ``PluginRecord``), ``generation`` (bumped whenever the set
    of registered plugins changes; caches of hook answers compare it), ``register_module``,
    ``unregister``, ``record_failure``, ``collect``, ``resolve_encoder``, ``failures``,
    ``record_of``.
    """

    def __init__(self) -> None:
        self._manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._manager.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.generation = 0
        #: unique per manager (``id()`` may be reused after a reset): caches key on it
        self.identity = next(_identities)
        #: SEGCORE_STRICT_PLUGINS, read (and warned about) once, when the manager is made
        self.strict = strict_mode()
        self._lock = threading.RLock()
        self._silenced_resolvers: set[str] = set()
        if env_flag(TRACE_VARIABLE):
            self._enable_tracing()

    # -- loading -------------------------------------------------------------------------
    def load_core(self) -> None:
        from segcore import heads

        self._register(heads, CORE_PLUGIN_NAME, CORE_PLUGIN_NAME, distribution="segcore",
                       version=_version(), module_name="segcore.heads")

    def load_entry_points(self) -> None:
        """Discover, check and import every entry point of the ``segcore`` group."""
        blocked = set(env_names(DISABLE_VARIABLE))
        matched: set[str] = set()
        core_version = _version()
        for entry_point in _iter_entry_points():
            distribution = getattr(entry_point, "dist", None)
            dist_name = distribution.name if distribution is not None else None
            dist_version = distribution.version if distribution is not None else None
            key = f"{dist_name}:{entry_point.name}" if dist_name else entry_point.name
            names = {normalize_name(entry_point.name)}
            if dist_name:
                names.add(normalize_name(dist_name))
            base = {
                "name": entry_point.name, "distribution": dist_name, "version": dist_version,
                "module": entry_point.value, "key": key,
            }
            if names & blocked:
                matched |= names & blocked
                self.records[key] = PluginRecord(
                    **base, status=STATUS_BLOCKED, error=f"disabled by {DISABLE_VARIABLE}"
                )
                continue
            requirement = _segcore_requirement(distribution)
            problem = _incompatibility(requirement, core_version)
            if problem is not None:
                self.records[key] = PluginRecord(
                    **base, status=STATUS_INCOMPATIBLE, error=problem, requires=requirement
                )
                continue
            with _captured_output() as output:
                try:
                    module = entry_point.load()
                except KeyboardInterrupt:
                    raise
                except BaseException as error:  # SystemExit too: a plugin never ends the host
                    self.records[key] = PluginRecord(
                        **base, status=STATUS_FAILED,
                        error=f"import failed: {_describe_error(error)}",
                        details="".join(traceback.format_exception(error)),
                        output=output.getvalue(), requires=requirement,
                    )
                    continue
            self._register(module, entry_point.name, key, dist_name, dist_version,
                           entry_point.value, output=output.getvalue(), requires=requirement)
        for name in sorted(blocked - matched):
            warnings.warn(
                f"{DISABLE_VARIABLE} names {name!r}, which matches no installed plugin (entry "
                f"point or distribution); `segcore plugins` lists them.",
                ConfigurationWarning,
                stacklevel=2,
            )
        self._check_pending()

    def register_module(self, module: Any, name: str) -> None:
        """Register a module or object with ``@hookimpl`` functions (tests, embedding apps)."""
        self._register(module, name, name, distribution=None, version=None,
                       module_name=getattr(module, "__name__", type(module).__name__))
        self._check_pending()

    def unregister(self, key: str) -> None:
        """Remove a plugin and its record (``register_module``'s undo)."""
        with self._lock:
            if self._manager.has_plugin(key):
                self._manager.unregister(name=key)
                self.generation += 1
            self.records.pop(key, None)
            self._silenced_resolvers.discard(key)

    def _register(
        self, module: Any, name: str, key: str, distribution: str | None, version: str | None,
        module_name: str | None, output: str = "", requires: str | None = None,
    ) -> None:
        base = {"name": name, "distribution": distribution, "version": version,
                "module": module_name, "key": key, "requires": requires}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeprecationWarning)
            try:
                self._manager.register(module, name=key)
            except (pluggy.PluginValidationError, ValueError) as error:
                self.records[key] = PluginRecord(
                    **base, status=STATUS_FAILED, error=_describe_error(error),
                    details="".join(traceback.format_exception(error)), output=output,
                )
                return
        for warning in caught:  # e.g. the deprecated segcore_decoders hook: re-issued as is
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
        self.generation += 1
        wrappers = self._wrapper_hooks(key)
        if wrappers:
            self._manager.unregister(name=key)
            self.records[key] = PluginRecord(
                **base, status=STATUS_FAILED, output=output,
                error=f"hook wrapper(s) {', '.join(wrappers)}: segcore hooks take plain "
                      f"implementations only; remove hookwrapper=True/wrapper=True",
            )
            return
        self.records[key] = PluginRecord(**base, status=STATUS_LOADED, output=output)

    def _wrapper_hooks(self, key: str) -> list[str]:
        plugin = self._manager.get_plugin(key)
        names = []
        for caller in self._manager.get_hookcallers(plugin) or ():
            for implementation in caller.get_hookimpls():
                if implementation.plugin is plugin and (
                    implementation.hookwrapper or getattr(implementation, "wrapper", False)
                ):
                    names.append(caller.name)
        return names

    def _check_pending(self) -> None:
        """Record plugins that implement hooks the contract does not define (typos)."""
        while True:
            try:
                self._manager.check_pending()
                return
            except pluggy.PluginValidationError as error:
                key = self._manager.get_name(error.plugin) or str(error.plugin)
                self._manager.unregister(error.plugin)
                self.generation += 1
                hooks = ", ".join(f"{h}()" for h in hookspecs.HOOKS)
                self.record_failure(
                    key, None,
                    f"{error}. The segcore hooks are: {hooks} (contract "
                    f"{hookspecs.CONTRACT_VERSION}); mark an optional hook of another project "
                    f"with @hookimpl(optionalhook=True)",
                    strict=False,
                )

    # -- failures ------------------------------------------------------------------------
    def record_failure(
        self, key: str, hook_name: str | None, error: BaseException | str, *,
        strict: bool = True, output: str = "",
    ) -> None:
        """Mark a plugin ``failed`` and unregister it, so it contributes nothing.

        ``strict=True`` raises ``PluginLoadError`` when ``SEGCORE_STRICT_PLUGINS`` is on.
        """
        with self._lock:
            previous = self.records.get(key)
            if isinstance(error, BaseException):
                text = _describe_error(error)
                details = "".join(traceback.format_exception(error))
            else:
                text, details = error, None
            message = text
            if hook_name:
                verb = "raised " if isinstance(error, BaseException) else ""
                message = f"hook {hook_name} {verb}{text}"
            self.records[key] = PluginRecord(
                name=previous.name if previous else key,
                distribution=previous.distribution if previous else None,
                version=previous.version if previous else None,
                module=previous.module if previous else None,
                status=STATUS_FAILED, error=message, details=details,
                output=(previous.output if previous else "") + output,
                requires=previous.requires if previous else None, key=key,
            )
            if self._manager.has_plugin(key):
                self._manager.unregister(name=key)
                self.generation += 1
        if strict and self.strict:
            raise PluginLoadError(self.strict_message([self.records[key]]))

    def failures(self) -> list[PluginRecord]:
        """Records of plugins that failed (import, contract or hook)."""
        return [r for r in self.records.values() if r.status == STATUS_FAILED]

    def problems(self) -> list[PluginRecord]:
        """Records of plugins that are not loaded for a reason other than being blocked."""
        return [r for r in self.records.values()
                if r.status in (STATUS_FAILED, STATUS_INCOMPATIBLE)]

    def record_of(self, key: str) -> PluginRecord | None:
        return self.records.get(key)

    def distribution_of(self, key: str) -> str | None:
        record = self.records.get(key)
        return record.distribution if record else None

    @staticmethod
    def strict_message(records: list[PluginRecord]) -> str:
        lines = "; ".join(
            f"plugin {r.name!r} ({r.distribution or 'unknown distribution'}) {r.status}: "
            f"{r.error}" for r in records
        )
        names = ",".join(sorted({r.name for r in records}))
        return (
            f"{lines}. Unset {STRICT_VARIABLE} to skip broken plugins, or block them with "
            f"{DISABLE_VARIABLE}={names}."
        )

    def raise_if_strict(self) -> None:
        """``PluginLoadError`` listing every problem when strict mode is on."""
        problems = self.problems()
        if problems and self.strict:
            raise PluginLoadError(self.strict_message(problems))

    # -- calling -------------------------------------------------------------------------
    def _implementations(self, hook_name: str) -> list[Any]:
        hook = getattr(self._manager.hook, hook_name)
        return list(reversed(hook.get_hookimpls()))  # registration order

    def _call_one(self, hook_name: str, key: str, **kwargs: Any) -> tuple[Any, str]:
        """Call one plugin's implementation through pluggy; returns (answer, printed output)."""
        others = [
            implementation.plugin for implementation in self._implementations(hook_name)
            if implementation.plugin_name != key
        ]
        caller = self._manager.subset_hook_caller(hook_name, remove_plugins=others)
        with _captured_output() as output:
            answer = caller(**kwargs)
        if not getattr(getattr(self._manager.hook, hook_name).spec, "opts", {}).get("firstresult"):
            answer = answer[0] if answer else None  # a list of one plugin's answer
        return answer, output.getvalue()

    def collect(self, hook_name: str, spec_class: type | None = None) -> list[tuple[str, Any]]:
        """Call every implementation of a list-returning hook on its own.

        Returns ``(plugin key, spec)`` pairs. A plugin whose hook raises, or returns something
        that is not a list of ``spec_class`` objects, is recorded as failed and unregistered;
        the other plugins' answers are kept.
        """
        results: list[tuple[str, Any]] = []
        for implementation in self._implementations(hook_name):
            key = implementation.plugin_name
            try:
                answer, output = self._call_one(hook_name, key)
            except KeyboardInterrupt:
                raise
            except BaseException as error:
                self.record_failure(key, hook_name, error)
                continue
            self._keep_output(key, output)
            if answer is None:
                continue
            problem = _check_answer(hook_name, answer, spec_class)
            if problem is not None:
                self.record_failure(key, hook_name, problem)
                continue
            results.extend((key, item) for item in answer)
        return results

    def resolve_encoder(self, name: str) -> tuple[str, Any] | None:
        """Ask the ``segcore_resolve_encoder`` implementations one by one (first answer wins).

        A resolver that raises a ``SegcoreError`` gave a deliberate answer ("unknown, did you
        mean ..."): the first such error is raised when no other resolver knows the name. A
        resolver that raises anything else, or answers with something that is not an
        ``EncoderSpec``, is recorded as failed and asked no more.
        """
        from segcore.specs import EncoderSpec

        deliberate: SegcoreError | None = None
        for implementation in self._implementations("segcore_resolve_encoder"):
            key = implementation.plugin_name
            if key in self._silenced_resolvers:
                continue
            try:
                answer, output = self._call_one("segcore_resolve_encoder", key, name=name)
            except SegcoreError as error:
                deliberate = deliberate or error
                continue
            except KeyboardInterrupt:
                raise
            except BaseException as error:
                self._silenced_resolvers.add(key)
                self.record_failure(key, "segcore_resolve_encoder", error)
                continue
            self._keep_output(key, output)
            if answer is None:
                continue
            if not isinstance(answer, EncoderSpec):
                self._silenced_resolvers.add(key)
                self.record_failure(
                    key, "segcore_resolve_encoder",
                    f"returned {type(answer).__name__}, expected an EncoderSpec or None",
                )
                continue
            return key, answer
        if deliberate is not None:
            raise deliberate
        return None

    def open_encoder_providers(self) -> list[str]:
        """Keys of the plugins that resolve open-ended encoder names."""
        return [i.plugin_name for i in self._implementations("segcore_resolve_encoder")]

    def _keep_output(self, key: str, output: str) -> None:
        if output and key in self.records:
            self.records[key] = attrs.evolve(self.records[key],
                                             output=self.records[key].output + output)

    def _enable_tracing(self) -> None:
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("segcore: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        starts: dict[int, float] = {}

        def before(hook_name: str, implementations: list[Any], kwargs: dict[str, Any]) -> None:
            starts[threading.get_ident()] = time.perf_counter()

        def after(outcome: Any, hook_name: str, implementations: list[Any],
                  kwargs: dict[str, Any]) -> None:
            elapsed = time.perf_counter() - starts.pop(threading.get_ident(), time.perf_counter())
            plugins = ", ".join(i.plugin_name for i in implementations) or "no plugin"
            arguments = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            failed = outcome.exception is not None
            logger.info("hook %s(%s) of %s took %.2f ms%s", hook_name, arguments, plugins,
                        elapsed * 1000, " and raised" if failed else "")

        self._manager.add_hookcall_monitoring(before, after)


def _check_answer(hook_name: str, answer: Any, spec_class: type | None) -> str | None:
    if not isinstance(answer, list | tuple):
        return f"returned {type(answer).__name__}, expected a list of specs"
    if spec_class is not None:
        wrong = [item for item in answer if not isinstance(item, spec_class)]
        if wrong:
            return (f"returned {type(wrong[0]).__name__} {wrong[0]!r:.60}, expected "
                    f"{spec_class.__name__} objects")
    return None


def _version() -> str | None:
    try:
        import importlib_metadata

        return importlib_metadata.version("segcore")
    except Exception:
        return None


_lock = threading.RLock()
_manager: PluginManager | None = None
_identities = itertools.count(1)


def get_plugin_manager(*, strict: bool = True) -> PluginManager:
    """The process-wide plugin manager, loaded on first use.

    With ``SEGCORE_STRICT_PLUGINS`` on, raises ``PluginLoadError`` listing every problem
    (``strict=False`` returns the manager anyway, for ``segcore plugins``).
    """
    global _manager
    with _lock:
        if _manager is None:
            manager = PluginManager()
            manager.load_core()
            manager.load_entry_points()
            _manager = manager
        manager = _manager
    if strict:
        manager.raise_if_strict()
    return manager


def reset() -> None:
    """Forget loaded plugins; the next call discovers them again (after installing one)."""
    global _manager
    with _lock:
        _manager = None


def plugin_records() -> list[PluginRecord]:
    """Every plugin the manager saw, with its status (loaded, failed, blocked, incompatible)."""
    return list(get_plugin_manager(strict=False).records.values())


def current_generation() -> tuple[int, int]:
    """An identifier of the current set of plugins: caches compare it to know they are stale."""
    manager = get_plugin_manager(strict=False)
    return manager.identity, manager.generation


__all__ = [
    "PluginManager",
    "PluginRecord",
    "get_plugin_manager",
    "plugin_records",
    "reset",
    "strict_mode",
]
