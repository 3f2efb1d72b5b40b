"""The plugin contract, version ``CONTRACT_VERSION``.

A plugin is a module registered under the entry-point group ``segcore``; it implements any of
these hooks with ``@segcore.hookimpl`` (plain functions; pluggy's hook wrappers are refused).
An implementation may take fewer arguments than the hook declares (pluggy's rule).

How every hook is called:

* once per process, the first time something needs the catalogue (a listing, ``build``,
  ``segcore plugins``); the answers are cached until a plugin is registered or unregistered;
* one plugin at a time, through pluggy (``SEGCORE_TRACE_PLUGINS=1`` logs each call and its
  duration): a plugin whose hook raises (any exception, ``SystemExit`` included) or returns
  something that is not a list of the hook's spec class is recorded as ``failed`` with the
  hook and the error, contributes nothing, and the other plugins keep working
  (``SEGCORE_STRICT_PLUGINS=1`` turns the failure into a ``PluginLoadError``);
* a name already provided by an earlier plugin is a duplicate: the later plugin is recorded as
  ``failed`` with a ``DuplicateNameError`` naming both providers; first-party plugins load
  first, then the others by distribution name.

Implementations must not import heavy modules (model code, timm) at import time or while
returning specs: they reference code as ``"package.module:attribute"`` strings, imported only
when a model is built. Note that the plugin package's ``__init__`` is imported with it.

Versioning: a plugin declares the contract range it was written for through its dependency on
the ``segcore`` distribution (``dependencies = ["segcore>=1.0,<2"]``); the major version of
segcore is the major version of the contract. A plugin whose range excludes the installed
segcore is not imported and is recorded as ``incompatible`` with the range it needs.
"""

from __future__ import annotations

import pluggy

from segcore.specs import (
    ArchitectureSpec,
    CommandSpec,
    EncoderSpec,
    HeadSpec,
    LossSpec,
    MetricSpec,
)

PROJECT_NAME = "segcore"

#: The version of this contract. Additions bump the minor version, breaking changes the major.
CONTRACT_VERSION = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def segcore_encoders() -> list[EncoderSpec]:
    """Named encoders this plugin provides (``EncoderSpec`` list).

    Called once per process (cached). Must not import the encoder modules or timm. Raising or
    returning anything but a list of ``EncoderSpec`` marks the plugin ``failed``; a name another
    plugin already provides marks this plugin ``failed`` (``DuplicateNameError``).

    Since contract 0.1.
    """


@hookspec
def segcore_architectures() -> list[ArchitectureSpec]:
    """Architectures (encoder + decoder + heads) this plugin provides (``ArchitectureSpec`` list).

    Called once per process (cached). Must not import the model modules. Raising or returning
    anything but a list of ``ArchitectureSpec`` marks the plugin ``failed``; a name another
    plugin already provides marks this plugin ``failed`` (``DuplicateNameError``).

    Since contract 1.0 (replaces ``segcore_decoders``).
    """


@hookspec(
    warn_on_impl=DeprecationWarning(
        "the segcore hook 'segcore_decoders' is deprecated since contract 1.0 and will be "
        "removed in 2.0: rename the implementation to 'segcore_architectures'"
    )
)
def segcore_decoders() -> list[ArchitectureSpec]:
    """Deprecated name of ``segcore_architectures`` (same meaning; warns when implemented).

    Since contract 0.1; deprecated in 1.0.
    """


@hookspec
def segcore_heads() -> list[HeadSpec]:
    """Heads this plugin provides (``HeadSpec`` list).

    Called once per process (cached). Must not import the head modules. Raising, a wrong
    return value or a duplicate name marks the plugin ``failed``.

    Since contract 0.1.
    """


@hookspec
def segcore_losses() -> list[LossSpec]:
    """Losses this plugin provides (``LossSpec`` list); ``segcore.build_loss`` builds them.

    Called once per process (cached). Must not import the loss modules. Raising, a wrong
    return value or a duplicate name marks the plugin ``failed``.

    Since contract 0.1.
    """


@hookspec
def segcore_metrics() -> list[MetricSpec]:
    """Metric functions this plugin provides (``MetricSpec`` list); ``segcore.get_metric``.

    Called once per process (cached). Must not import the metric modules. Raising, a wrong
    return value or a duplicate name marks the plugin ``failed``.

    Since contract 0.1.
    """


@hookspec(firstresult=True)
def segcore_resolve_encoder(name: str) -> EncoderSpec | None:
    """A spec for an open-ended encoder name (``"tu-<timm name>"``), or ``None``.

    Called once per name that no plugin lists, when it is first built or described (the
    answer is cached). Resolvers are asked one by one, first-party first; the first spec
    wins. A resolver may import what it needs to answer (it runs only for a name the user is
    about to use). Raising a ``segcore.errors.SegcoreError`` is a deliberate answer ("no such
    model; did you mean ...") that is shown when no other resolver knows the name; raising
    anything else or returning something that is not an ``EncoderSpec`` or ``None`` marks the
    plugin ``failed`` and it is asked no more.

    Since contract 0.1.
    """


@hookspec
def segcore_commands() -> list[CommandSpec]:
    """Subcommands added to the ``segcore`` command line (``CommandSpec`` list).

    Called once per process when the command line starts. Must not import the command's
    implementation. Raising, a wrong return value or a name that is taken (a built-in command
    or another plugin's) marks the plugin ``failed``.

    Since contract 0.1.
    """


#: Every hook of the contract, with the kind it fills and the version it appeared in.
HOOKS: dict[str, tuple[str, str]] = {
    "segcore_encoders": ("encoders", "0.1"),
    "segcore_architectures": ("architectures", "1.0"),
    "segcore_decoders": ("architectures", "0.1"),
    "segcore_heads": ("heads", "0.1"),
    "segcore_losses": ("losses", "0.1"),
    "segcore_metrics": ("metrics", "0.1"),
    "segcore_resolve_encoder": ("encoders", "0.1"),
    "segcore_commands": ("commands", "0.1"),
}
