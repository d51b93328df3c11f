"""parse_duration / format_duration: accepted forms, clear errors, and a round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("2.5", 2.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1H30M", 5400.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1s500ms", 1.5),
        (" 10s ", 10.0),
        (0, 0.0),
    ],
)
def test_accepted_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "  ", "5x", "m", "h1", "1m1h", "1h1h", "1h30", "-5", "-5s", "1 h x", "abc"])
def test_rejected_strings_name_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), True, None, [1], b"5s"])
def test_rejected_values(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (90, "1m30s"), (5400, "1h30m"), (86400, "1d"), (604800, "7d"), (0.25, "250ms"), (600, "10m")],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_rejects_negative() -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=10**9))
def test_round_trip_whole_milliseconds(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)
