"""Hook implementations of segcore-timm: resolves open-ended ``tu-<timm model>`` names.

Imports nothing but ``segcore.hookspecs`` and ``segcore.specs``. timm is imported only when a
``tu-`` name is resolved (the user is about to build it), never while encoders are listed.
"""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec
from segcore_timm import PREFIX


@hookimpl
def segcore_resolve_encoder(name: str) -> EncoderSpec | None:
    """The spec of ``"tu-<timm model>"``; ``None`` for any other name.

    Raises ``UnknownNameError`` (with close matches) when timm has no such model.
    """
    if not isinstance(name, str) or not name.startswith(PREFIX):
        return None
    from segcore_timm.layout import encoder_spec

    return encoder_spec(name)
