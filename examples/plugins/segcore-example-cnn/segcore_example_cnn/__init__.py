"""GuideCNN, an example encoder plugin for segcore (docs/plugins.md, part 1).

Example::

    import segcore
    model = segcore.Unet("guide-cnn", encoder_weights=None, in_channels=1, classes=3)
    encoder = segcore.get_encoder("guide-cnn", depth=4)
    # or: from segcore_example_cnn import GuideCNNEncoder

segcore imports this package when it discovers the plugin, before ``plugin.py``; the public
names are therefore loaded on first use (``lazy_exports``), so discovery imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "GuideCNNEncoder": "segcore_example_cnn.encoder",
    "build_encoder": "segcore_example_cnn.encoder",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
