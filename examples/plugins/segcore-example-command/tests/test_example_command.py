"""The plugin's own tests: the command runs through ``segcore.cli.main``, with a tiny
architecture and the kit's tiny encoder (no architecture or encoder plugin needed)."""

from __future__ import annotations

import io
from typing import Any

import attrs
import pytest
import torch
from torch import nn

from segcore import cli, testing
from segcore.model import SegmentationModel
from segcore.options import ArchitectureOptions
from segcore.specs import ArchitectureSpec


@attrs.frozen
class NoOptions(ArchitectureOptions):
    pass


class LastFeature(nn.Module):
    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return features[-1]


class TinyArchitecture(SegmentationModel):
    """The smallest architecture: the head sits on the deepest encoder features."""

    architecture = "tinyarch"
    options_class = NoOptions

    def build_decoder(self, encoder_channels: tuple[int, ...], options: Any) -> nn.Module:
        return LastFeature()

    def segmentation_head_options(self, options: Any) -> dict[str, Any]:
        return {"in_channels": self.encoder.out_channels[-1], "kernel_size": 1, "upsampling": 1}


@pytest.fixture(autouse=True)
def tiny_models(segcore_isolation):
    spec = ArchitectureSpec(name="tinyarch", model=TinyArchitecture)
    with testing.tiny_encoder_installed(), testing.specs_installed(architectures=[spec]):
        yield


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_the_command_is_listed_in_the_help():
    status, output = run()
    assert status == 0 and "count-params" in output


def test_prints_the_parameter_count():
    status, output = run("count-params", "tinyarch", "--encoder", testing.TINY_ENCODER,
                         "--classes", "3")
    model = TinyArchitecture(testing.TINY_ENCODER, classes=3)
    total = sum(parameter.numel() for parameter in model.parameters())
    assert status == 0
    assert output.startswith(f"tinyarch-{testing.TINY_ENCODER}: {total:,} parameters")


def test_segcore_reports_errors_of_the_command(capsys):
    status, output = run("count-params", "tinyarc", "--encoder", testing.TINY_ENCODER)
    assert status == 2 and output == ""
    error = capsys.readouterr().err
    assert error.startswith("segcore: error:") and "'tinyarch'" in error  # did you mean
