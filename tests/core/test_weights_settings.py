"""Environment variables of the weights: parsed loudly (segcore.environment)."""

from __future__ import annotations

import warnings

import pytest

from segcore import weights
from segcore.environment import env_flag, env_seconds
from segcore.errors import ConfigurationWarning


def _no_warning(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args)


@pytest.mark.parametrize(
    "value",
    ["1", "true", "yes", "on", "y", "t", "enable", "enabled", "YES", " On ", "Enabled", "T"],
)
def test_true_spellings(monkeypatch, value):
    monkeypatch.setenv("SEGCORE_TEST_FLAG", value)
    assert _no_warning(env_flag, "SEGCORE_TEST_FLAG") is True
    assert _no_warning(env_flag, "SEGCORE_TEST_FLAG", True) is True


@pytest.mark.parametrize(
    "value",
    ["0", "false", "no", "off", "n", "f", "disable", "disabled", "", "NO", " off ", "Disabled",
     "  "],
)
def test_false_spellings(monkeypatch, value):
    monkeypatch.setenv("SEGCORE_TEST_FLAG", value)
    assert _no_warning(env_flag, "SEGCORE_TEST_FLAG") is False
    assert _no_warning(env_flag, "SEGCORE_TEST_FLAG", True) is False


def test_unset_flag_is_the_default(monkeypatch):
    monkeypatch.delenv("SEGCORE_TEST_FLAG", raising=False)
    assert _no_warning(env_flag, "SEGCORE_TEST_FLAG") is False
    assert _no_warning(env_flag, "SEGCORE_TEST_FLAG", True) is True


@pytest.mark.parametrize("value", ["2", "maybe", "offline", "-1", "truee"])
def test_other_flag_values_warn_and_give_the_default(monkeypatch, value):
    monkeypatch.setenv("SEGCORE_TEST_FLAG", value)
    with pytest.warns(ConfigurationWarning) as caught:
        assert env_flag("SEGCORE_TEST_FLAG") is False
    message = str(caught[0].message)
    assert "SEGCORE_TEST_FLAG" in message and repr(value) in message
    with pytest.warns(ConfigurationWarning):
        assert env_flag("SEGCORE_TEST_FLAG", True) is True


def test_configuration_warning_is_a_user_warning():
    assert issubclass(ConfigurationWarning, UserWarning)


@pytest.mark.parametrize("value", ["1", "y", "enabled", "on"])
def test_offline_spellings(monkeypatch, value):
    monkeypatch.setenv("SEGCORE_OFFLINE", value)
    assert _no_warning(weights.offline) is True


def test_offline_with_an_unknown_value_warns(monkeypatch):
    monkeypatch.setenv("SEGCORE_OFFLINE", "2")
    with pytest.warns(ConfigurationWarning, match="SEGCORE_OFFLINE='2'"):
        assert weights.offline() is False


@pytest.mark.parametrize(("value", "seconds"), [("90", 90.0), (" 2.5 ", 2.5), ("1e3", 1000.0)])
def test_seconds(monkeypatch, value, seconds):
    monkeypatch.setenv("SEGCORE_TEST_SECONDS", value)
    assert _no_warning(env_seconds, "SEGCORE_TEST_SECONDS", 60.0) == seconds


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_seconds_are_the_default(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("SEGCORE_TEST_SECONDS", raising=False)
    else:
        monkeypatch.setenv("SEGCORE_TEST_SECONDS", value)
    assert _no_warning(env_seconds, "SEGCORE_TEST_SECONDS", 60.0) == 60.0


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "1h", "10s"])
def test_bad_seconds_warn_and_give_the_default(monkeypatch, value):
    monkeypatch.setenv("SEGCORE_TEST_SECONDS", value)
    with pytest.warns(ConfigurationWarning) as caught:
        assert env_seconds("SEGCORE_TEST_SECONDS", 60.0) == 60.0
    message = str(caught[0].message)
    assert "SEGCORE_TEST_SECONDS" in message and repr(value) in message and "60" in message


def test_download_timeouts_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("SEGCORE_DOWNLOAD_TIMEOUT", raising=False)
    monkeypatch.delenv("SEGCORE_DOWNLOAD_STALL_TIMEOUT", raising=False)
    assert weights.download_timeouts() == (3600.0, 60.0)
    monkeypatch.setenv("SEGCORE_DOWNLOAD_TIMEOUT", "120")
    monkeypatch.setenv("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "7.5")
    assert weights.download_timeouts() == (120.0, 7.5)
    monkeypatch.setenv("SEGCORE_DOWNLOAD_STALL_TIMEOUT", "soon")
    with pytest.warns(ConfigurationWarning, match="SEGCORE_DOWNLOAD_STALL_TIMEOUT"):
        assert weights.download_timeouts() == (120.0, 60.0)
