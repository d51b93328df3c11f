"""Strict decoding of untrusted JSON request bodies — pure, no I/O.

``json.loads`` accepts more than relayd can safely carry further, and some of it used to escape as a 500 (which
makes the platform retry the same poison) or, worse, reach the store and fail a whole group commit:

* nesting thousands of levels deep raises ``RecursionError`` in the parser, or later in any recursive walk;
* an integer with thousands of digits parses, then ``float()`` of it raises ``OverflowError``;
* ``NaN``, ``Infinity`` and ``1e400`` (which ``float`` turns into ``inf``) are not JSON numbers at all;
* a ``\\udcff`` escape decodes to a lone UTF-16 surrogate, a ``str`` that cannot be encoded as UTF-8, so SQLite
  (and every log sink) refuses it.

Every such body is **rejected** here with ``BodyError`` (the caller answers 400), never repaired: the platform
never sends them, and repairing would record something other than what was sent. So everything that passes
``decode_object`` is storable as is: its strings are valid Unicode, its numbers finite and of sane size, its
depth bounded.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of arrays/objects accepted; real callbacks use two or three levels."""

MAX_INT_DIGITS = 40
"""Longest integer literal accepted (a 128-bit id has 39 digits); well inside float range."""


class BodyError(ValueError):
    """The body is not a JSON object relayd accepts; the message says why, for the 400 answer."""


def decode_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes, or ``BodyError``: bounded depth, finite numbers, valid Unicode."""
    try:
        body = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError as e:
        raise BodyError(f"body nests deeper than {MAX_DEPTH} levels") from e
    except BodyError:
        raise
    except (UnicodeDecodeError, ValueError) as e:
        raise BodyError("body is not JSON") from e
    if not isinstance(body, dict):
        raise BodyError("body is not a JSON object")
    check_tree(body)
    return body


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BodyError(f"body has an integer longer than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError("body has a number out of range")
    return value


def _constant(text: str) -> float:
    raise BodyError(f"body has {text}, which is not a JSON number")


def check_tree(value: Any) -> None:
    """``BodyError`` if ``value`` nests deeper than ``MAX_DEPTH`` or holds a string that is not valid Unicode.

    Iterative, so a deep value cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise BodyError(f"body nests deeper than {MAX_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise BodyError("body has a string with a lone UTF-16 surrogate (not valid Unicode)") from e
