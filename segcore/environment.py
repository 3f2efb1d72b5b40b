"""Reading segcore's settings from environment variables, loudly.

A value that cannot be understood is never silently taken to mean something: it is reported
with a ``ConfigurationWarning`` that names the variable and the value, and the default is used.
"""

from __future__ import annotations

import math
import os
import warnings

from segcore.errors import ConfigurationWarning

TRUE_SPELLINGS = frozenset({"1", "true", "yes", "on", "y", "t", "enable", "enabled"})
FALSE_SPELLINGS = frozenset({"0", "false", "no", "off", "n", "f", "disable", "disabled", ""})


def env_flag(name: str, default: bool = False) -> bool:
    """The yes/no value of environment variable ``name``; ``default`` when it is unset.

    ``1, true, yes, on, y, t, enable, enabled`` mean yes and ``0, false, no, off, n, f,
    disable, disabled`` or an empty value mean no (any case, surrounding spaces ignored).
    Anything else warns (``ConfigurationWarning``) and gives ``default``.
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_SPELLINGS:
        return True
    if value in FALSE_SPELLINGS:
        return False
    warnings.warn(
        ConfigurationWarning(
            f"{name}={raw!r} is not a yes/no value; using the default ({_yes_no(default)}). "
            f"Set {name}=1 (or true/yes/on) for yes, {name}=0 (or false/no/off) for no."
        ),
        stacklevel=2,
    )
    return default


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds from environment variable ``name``; ``default`` when unset or empty.

    The value must be a finite number greater than zero (``"90"``, ``"2.5"``). Anything else
    warns (``ConfigurationWarning``) and gives ``default``.
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value > 0:
        return value
    warnings.warn(
        ConfigurationWarning(
            f"{name}={raw!r} is not a number of seconds greater than zero; using the default "
            f"({default:g} s). Set it like {name}={default:g}."
        ),
        stacklevel=2,
    )
    return default


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def normalize_name(name: str) -> str:
    """A distribution or entry-point name in comparable form (``a_b.C`` -> ``a-b-c``, PEP 503)."""
    import re

    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def env_names(name: str) -> list[str]:
    """The comma-separated names of environment variable ``name``, normalised, empties dropped."""
    raw = os.environ.get(name, "")
    return [normalize_name(part) for part in raw.split(",") if part.strip()]
