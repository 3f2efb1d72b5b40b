"""SE-Net encoders for segcore (squeeze-and-excitation networks).

Names: ``senet154``, ``se_resnet50/101/152``, ``se_resnext50_32x4d``, ``se_resnext101_32x4d``.
Module names are those of SMP's SE-Net encoders (Cadene's ``pretrainedmodels`` layout:
``layer0`` .. ``layer4``, blocks with ``se_module.fc1/fc2``), so SMP encoder state dicts and
SMP's hub weights load unchanged.

Example::

    import segcore
    encoder = segcore.get_encoder("se_resnext50_32x4d", in_channels=1, depth=4)

The implementation classes are imported lazily (``from segcore_senet import SENetEncoder``),
so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["SEBottleneck", "SENetEncoder", "SqueezeExcitation", "build_encoder"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "segcore_senet.encoder"))
