"""MobileOne encoders for segcore (Vasu et al., "An Improved One millisecond Mobile Backbone").

Names: ``mobileone_s0`` ... ``mobileone_s4`` (SMP 0.6.0's names; newer than the reference
documentation). Module names are those of SMP's ``MobileOne`` encoder, so SMP encoder state
dicts load unchanged.

The encoders are built with their train-time branches. For inference, fuse them into one
convolution per block (same outputs, fewer operations)::

    import segcore
    from segcore_mobileone import reparameterize_model

    model = segcore.Unet("mobileone_s0", encoder_weights="imagenet").eval()
    fused = reparameterize_model(model)       # a fused copy; model.encoder.reparameterize()
                                              # fuses in place

The implementation is imported lazily (``from segcore_mobileone import MobileOneEncoder``),
so that discovering the plugin imports no torch model code.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

__all__ = ["MobileOneBlock", "MobileOneEncoder", "SqueezeExcite", "build_encoder",
           "reparameterize_model"]
__getattr__, __dir__ = lazy_exports(__name__,
                                    dict.fromkeys(__all__, "segcore_mobileone.encoder"))
