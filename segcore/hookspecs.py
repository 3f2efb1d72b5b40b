"""The plugin contract.

A plugin is a module registered under the entry-point group ``segcore``; it implements any of
these hooks with ``@segcore.hookimpl``. Every hook returns a list of specs
(``segcore.specs``); implementations must not import heavy modules (torch models, timm) at
import time or while returning specs: reference them as ``"module:attribute"`` strings.
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

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def segcore_encoders() -> list[EncoderSpec]:
    """Named encoders this plugin provides."""


@hookspec
def segcore_decoders() -> list[ArchitectureSpec]:
    """Architectures (decoder + heads) this plugin provides."""


@hookspec
def segcore_heads() -> list[HeadSpec]:
    """Heads this plugin provides."""


@hookspec
def segcore_losses() -> list[LossSpec]:
    """Losses this plugin provides."""


@hookspec
def segcore_metrics() -> list[MetricSpec]:
    """Metric functions this plugin provides."""


@hookspec(firstresult=True)
def segcore_resolve_encoder(name: str) -> EncoderSpec | None:
    """Return a spec for an open-ended encoder name (``"tu-<timm name>"``), or ``None``.

    Called only for names that no plugin lists. The first non-``None`` answer wins.
    """


@hookspec
def segcore_commands() -> list[CommandSpec]:
    """Subcommands added to the ``segcore`` command line."""
