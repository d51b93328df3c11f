"""Strict JSON body decoding: the limits sit exactly where documented, and nothing it accepts is unstorable."""

from __future__ import annotations

import json

import pytest

from relayd.web.jsonbody import MAX_DEPTH, MAX_INT_DIGITS, BodyError, check_tree, decode_object


def nested(depth: int) -> bytes:
    """An object whose innermost value sits ``depth`` containers deep (the top object counts as one)."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_depth_limit_is_exact() -> None:
    assert decode_object(nested(MAX_DEPTH))
    with pytest.raises(BodyError, match="nests deeper"):
        decode_object(nested(MAX_DEPTH + 1))


def test_integer_digit_limit_is_exact() -> None:
    assert decode_object(b'{"n": -' + b"9" * MAX_INT_DIGITS + b"}")["n"] == -int("9" * MAX_INT_DIGITS)
    with pytest.raises(BodyError, match="digits"):
        decode_object(b'{"n": ' + b"9" * (MAX_INT_DIGITS + 1) + b"}")


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_non_finite_numbers_are_refused(number: bytes) -> None:
    with pytest.raises(BodyError):
        decode_object(b'{"n": ' + number + b"}")


def test_accepted_strings_are_valid_utf8_and_pairs_pass() -> None:
    body = decode_object(json.dumps({"k": "\U0001f600", "数": ["生效中"]}).encode())
    assert json.dumps(body, ensure_ascii=False).encode("utf-8")
    with pytest.raises(BodyError, match="surrogate"):
        check_tree({"ok": ["x", {"y": "\ud83d"}]})


@pytest.mark.parametrize("raw", [b"", b"[]", b"1", b"\xff", b"{", b'{"a": 1,}'])
def test_non_objects_and_non_json_are_refused(raw: bytes) -> None:
    with pytest.raises(BodyError):
        decode_object(raw)
