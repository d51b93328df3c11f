"""Human-friendly durations for settings and schedules.

Operators write ``90s``, ``5m``, ``1h30m`` or ``2d`` in config files and env vars; code works in seconds (float).
:func:`parse_duration` accepts plain numbers (seconds) and strings made of ``<number><unit>`` parts with units
``ms``, ``s``, ``m``, ``h``, ``d``, ``w`` (each unit at most once, largest first, whitespace allowed between
parts). A bare numeric string (``"90"``) is seconds too. :func:`format_duration` is the inverse for display: it
prints the shortest exact form (``5400`` -> ``"1h30m"``).

Pure functions: no I/O, no clock. Negative durations are rejected; callers that need a strictly positive value
check it themselves (the settings do, per key).
"""

from __future__ import annotations

import math
import re

UNITS: dict[str, float] = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_ORDER = ("w", "d", "h", "m", "s", "ms")
_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|[wdhms])", re.IGNORECASE)
_NUMBER = re.compile(r"\s*[+]?(\d+(?:\.\d*)?|\.\d+)\s*")
_HINT = "expected seconds (e.g. 90) or a duration like 90s, 5m, 1h30m, 2d"


def parse_duration(value: object) -> float:
    """Seconds in ``value``: an int/float of seconds, a numeric string, or a string like ``1h30m``.

    Raises ValueError naming the bad value and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: {_HINT}")
    if isinstance(value, int | float):
        return _checked(float(value), value)
    if isinstance(value, str):
        return _checked(_parse_text(value), value)
    raise ValueError(f"invalid duration {value!r}: {_HINT}")


def _checked(seconds: float, original: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {original!r}: must be a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"invalid duration {original!r}: must not be negative")
    return seconds


def _parse_text(text: str) -> float:
    if _NUMBER.fullmatch(text):
        return float(text)
    pos, total, seen = 0, 0.0, -1
    while pos < len(text.rstrip()):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}: {_HINT}")
        rank = _ORDER.index(match.group(2).lower())
        if rank <= seen:
            raise ValueError(f"invalid duration {text!r}: units must appear once each, largest first (e.g. 1h30m)")
        seen = rank
        total += float(match.group(1)) * UNITS[match.group(2).lower()]
        pos = match.end()
    if seen < 0:
        raise ValueError(f"invalid duration {text!r}: {_HINT}")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact ``1h30m``-style form of ``seconds`` (``0`` -> ``"0s"``; fractions kept as ``ms``)."""
    if seconds < 0 or math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"cannot format duration {seconds!r}")
    remaining = round(seconds * 1000)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(UNITS[unit] * 1000)
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
