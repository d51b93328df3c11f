"""TOML is read by rtoml with tomllib as the arbiter: the data is exactly tomllib's, and so is every verdict."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import rtoml
from hypothesis import given, settings
from hypothesis import strategies as st

from relayd.schedules.parsing import ParseError, parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config").rglob("*.toml"))

EVERY_KIND = """
title = "news"
int = 0xdead_beef
neg = -17
float = 6.5e-3
inf = inf
bool = true
utc = 1979-05-27T07:32:00Z
east = 1979-05-27T07:32:00.999999+08:00
west = 1979-05-27T00:32:00-07:00
zero = 1979-05-27T07:32:00+00:00
local = 1979-05-27T07:32:00
day = 1979-05-27
clock = 07:32:00
multi = \"\"\"
two
lines\"\"\"
literal = 'C:\\path'
[table]
"dotted.key" = 1
nested.deeper = [1, 2.5, "s", [true], {a = 1979-05-27T07:32:00+01:00}]
[[schedule]]
id = "a"
[[schedule]]
id = "b"
"""


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types throughout (tzinfo included: equal datetimes may carry different tzinfo types)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and type(a.tzinfo) is type(b.tzinfo) and a.utcoffset() == b.utcoffset()
    return bool(a == b) or (a != a and b != b)  # NaN


def parsed(text: str) -> Any:
    data, _ = parse(Path("s.toml"), text)
    return data


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_shipped_examples_read_exactly_as_tomllib_reads_them(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert same(parsed(text), tomllib.loads(text))


def test_every_kind_of_value_reads_exactly_as_tomllib_reads_it() -> None:
    data = parsed(EVERY_KIND)
    assert same(data, tomllib.loads(EVERY_KIND))
    assert data["utc"].tzinfo is UTC and data["east"].tzinfo == timezone(timedelta(hours=8))
    assert isinstance(data["day"], date) and isinstance(data["clock"], time)
    assert type(rtoml.loads(EVERY_KIND)["east"].tzinfo) is not timezone  # why the rewrite exists


@pytest.mark.parametrize(
    "text",
    [
        "big = 1" + "0" * 40,  # past 128 bits: rtoml refuses, tomllib reads a Python int
        "huge = 1e400",  # rtoml refuses, tomllib reads inf
        "deep = " + "[" * 120 + "]" * 120,  # deeper than rtoml's recursion limit
    ],
    ids=["big-integer", "float-overflow", "deep-nesting"],
)
def test_a_document_rtoml_refuses_but_tomllib_accepts_is_read(text: str) -> None:
    with pytest.raises(ValueError):
        rtoml.loads(text)
    assert same(parsed(text), tomllib.loads(text))


def test_a_syntax_error_has_tomllibs_wording_and_line() -> None:
    text = 'id = "a"\nurl = "rtmp://x"\nbroken = = 1\n'
    with pytest.raises(tomllib.TOMLDecodeError) as expected:
        tomllib.loads(text)
    with pytest.raises(ParseError) as refused:
        parsed(text)
    assert refused.value.line == 3
    assert str(expected.value) in refused.value.message


def test_a_lone_surrogate_escape_is_still_refused() -> None:
    with pytest.raises(ParseError):
        parsed('title = "\\udcff"')


SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-7, minutes=-30))]),
    ).map(lambda d: d.replace(microsecond=0)),
)
KEYS = st.text(alphabet="abcxyz_-", min_size=1, max_size=6)
DOCS = st.dictionaries(
    KEYS,
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3)),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(doc=DOCS)
def test_any_document_reads_exactly_as_tomllib_reads_it(doc: dict[str, Any]) -> None:
    text = rtoml.dumps(doc)
    assert same(parsed(text), tomllib.loads(text))
