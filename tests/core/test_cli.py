"""The ``segcore`` command: listing, info, plugins, and subcommands added by plugins."""

from __future__ import annotations

import argparse
import io

import pytest

from segcore import hookimpl, testing
from segcore.cli import main
from segcore.specs import CommandSpec


def add_hello(parser: argparse.ArgumentParser):
    parser.add_argument("who")

    def run(arguments: argparse.Namespace) -> int:
        print(f"hello {arguments.who}")
        return 3

    return run


class CommandPlugin:
    @hookimpl
    def segcore_commands(self):
        return [CommandSpec(name="hello", factory=add_hello, help="say hello")]


def run(*arguments: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(arguments), out=out)
    return code, out.getvalue()


@pytest.fixture
def tiny(core_only):
    with testing.tiny_encoder_installed():
        yield


def test_list_and_patterns(tiny):
    code, text = run("list", "encoders", "segcore-*")
    assert code == 0 and text.startswith("segcore-testing-tiny") and "Testing" in text
    code, text = run("list")
    assert "heads (2):" in text and "segmentation" in text


def test_info_of_an_encoder_and_a_head(tiny):
    code, text = run("info", "segcore-testing-tiny")
    assert code == 0
    assert "encoder from plugin" in text
    assert "out_channels (depth 5): (3, 8, 16, 24, 32, 40)" in text
    assert "(none: random initialisation only)" in text
    code, text = run("info", "classification")
    assert "signature: classification(in_channels" in text


def test_unknown_name_exits_2_with_suggestions(tiny, capsys):
    code, _ = run("info", "segcore-testing-tinny")
    assert code == 2
    assert "Did you mean 'segcore-testing-tiny'" in capsys.readouterr().err


def test_plugins_can_add_subcommands(core_only, capsys):
    with testing.plugin_installed(CommandPlugin()):
        code, _ = run("hello", "world")
    assert code == 3
    assert capsys.readouterr().out == "hello world\n"


def test_plugins_listing_shows_core(core_only):
    code, text = run("plugins")
    assert code == 0
    assert text.split()[:2] == ["segcore.core", "segcore"] and "loaded" in text
