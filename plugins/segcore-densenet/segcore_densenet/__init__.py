"""DenseNet encoders for segcore.

Names: ``densenet121``, ``densenet169``, ``densenet201``, ``densenet161``. Module names are
torchvision's, so SMP encoder state dicts load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("densenet121", in_channels=1, depth=4)

The implementation classes are imported lazily (``from segcore_densenet import
DenseNetEncoder``), so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["DenseBlock", "DenseLayer", "DenseNetEncoder", "Transition", "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_densenet.encoder"))
