"""Bounded excerpts of configuration values for error messages. Domain layer: pure, no I/O.

Why not ``repr(value)[:60]``: ``repr`` renders the *whole* value before it is cut. A value read from a hostile
file can be huge (a 4 MiB string) or, through YAML aliases, a shared structure that expands exponentially when
walked: rendering it whole cost gigabytes and tens of seconds. :func:`excerpt` looks at no more than a few
elements, a few levels deep and a few dozen characters of any string, so its cost does not grow with the value.
"""

from __future__ import annotations

import reprlib
from typing import Any

MAX_CHARS = 60


class _Bounded(reprlib.Repr):
    """reprlib's limits, plus big integers shown by size (their repr is slow, and refused past 4300 digits)."""

    def repr_int(self, x: int, level: int) -> str:
        return f"<a {x.bit_length()}-bit integer>" if x.bit_length() > 128 else repr(x)


_REPR = _Bounded()
_REPR.maxlevel = 3
_REPR.maxtuple = _REPR.maxlist = _REPR.maxarray = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 4
_REPR.maxdict = 4
_REPR.maxstring = MAX_CHARS
_REPR.maxother = MAX_CHARS


def excerpt(value: Any, limit: int = MAX_CHARS) -> str:
    """A ``repr``-like text of ``value`` of at most ``limit`` characters, built without rendering it whole."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def excerpt_text(text: str, limit: int = MAX_CHARS) -> str:
    """A plain string cut to ``limit`` characters, with non-printable characters escaped (names, keys, ids)."""
    head = text[: limit + 1]
    shown = head if head.isprintable() else head.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
