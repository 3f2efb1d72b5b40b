"""Hook implementations only: describe the architecture, reference the model class lazily."""

from __future__ import annotations

from segcore.hookspecs import hookimpl
from segcore.specs import ArchitectureSpec


@hookimpl
def segcore_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec(
            name="examplefpn",
            model="segcore_example_architecture.model:ExampleFPN",
            description="a small feature pyramid: lateral 1x1 convs, top-down sum; any input size",
        )
    ]
