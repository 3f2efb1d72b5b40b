"""Dual Path Network (DPN) encoders for segcore.

Names: ``dpn68``, ``dpn68b``, ``dpn92``, ``dpn98``, ``dpn107``, ``dpn131``. Module names are
those of SMP's ``DPNEncoder`` (``features.conv1_1``, ``features.conv2_1``, ...), so SMP encoder
state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("dpn68", in_channels=1, depth=4)

The implementation classes are imported lazily (``from segcore_dpn import DPNEncoder``), so
that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["BnActConv2d", "CatBnAct", "DPNEncoder", "DualPathBlock", "InputBlock",
           "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_dpn.encoder"))
