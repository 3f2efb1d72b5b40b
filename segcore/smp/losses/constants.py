"""The loss modes of SMP 0.6.0 (``smp.losses.constants``): segcore's own constants.

- ``BINARY_MODE`` (``"binary"``): one class; output (N, 1, H, W), target (N, H, W) of 0/1.
- ``MULTICLASS_MODE`` (``"multiclass"``): exclusive classes; output (N, C, H, W), target
  (N, H, W) of class indices.
- ``MULTILABEL_MODE`` (``"multilabel"``): independent classes; output and target
  (N, C, H, W), the target 0/1 per channel.
"""

from __future__ import annotations

from segcore import BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE

__all__ = ["BINARY_MODE", "MULTICLASS_MODE", "MULTILABEL_MODE"]
