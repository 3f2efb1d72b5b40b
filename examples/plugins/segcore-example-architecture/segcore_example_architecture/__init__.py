"""ExampleFPN, an example architecture plugin for segcore (docs/plugins.md, part 2).

Example::

    import segcore
    model = segcore.build("examplefpn", encoder="resnet18", classes=3)
    model = segcore.ExampleFPN("resnet18", encoder_weights=None, classes=3)
    # or: from segcore_example_architecture import ExampleFPN

segcore imports this package when it discovers the plugin, before ``plugin.py``; the public
names are therefore loaded on first use (``lazy_exports``), so discovery imports no model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "ExampleFPN": "segcore_example_architecture.model",
    "ExampleFPNDecoder": "segcore_example_architecture.decoder",
    "ExampleFPNOptions": "segcore_example_architecture.options",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
