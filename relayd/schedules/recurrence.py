"""Cron expressions and their occurrences in a time zone: pure maths, no clock reads.

Why a small parser of our own instead of APScheduler's CronTrigger: planning runs on every reconcile pass for
every schedule, so expanding "daily at 20:00" for 14 days must cost microseconds, and its behaviour across DST
changes must be ours to define and test. The grammar is the classic five-field crontab (minute, hour, day of
month, month, day of week) with ``*``, ``a-b``, ``/step``, lists, month and weekday names, ``7`` for Sunday and
the ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly`` shorthands. As in Vixie cron, when both day
fields are restricted a day matches if *either* does.

Local times are evaluated in the schedule's zone:

* a local time that does not exist (skipped by a spring-forward change) fires at the instant the clocks jump,
  i.e. the first existing instant after it;
* a local time that exists twice (fall-back change) fires once, at its first occurrence;
* two local times that resolve to the same instant fire once.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_WEEKDAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_SHORTHANDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FIELD_RE = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
)
_GAP_SCAN_DAYS = 8 * 366  # two leap cycles: enough to see every day pattern a five-field cron can make
_EPOCH_DAY = date(2000, 1, 1)
_DAY = timedelta(days=1)


class CronError(ValueError):
    """A cron expression that does not parse, with the reason and how to fix it (separated by ' — ')."""


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed cron expression. ``weekdays`` uses Python's numbering (Monday 0 .. Sunday 6)."""

    expr: str
    times: tuple[tuple[int, int], ...]  # sorted (hour, minute) pairs
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_or: bool  # both day fields restricted: a day matches if either matches

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.days_or:
            return day.day in self.days or day.weekday() in self.weekdays
        return day.day in self.days and day.weekday() in self.weekdays


def _value(token: str, names: dict[str, int], field: str) -> int:
    if token.isdigit():
        return int(token)
    if token in names:
        return names[token]
    raise CronError(f"{field} field has {token!r}, which is neither a number nor a name — use e.g. 0-59, mon, jan")


def _parse_part(part: str, field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    match = _FIELD_RE.match(part)
    if match is None:
        raise CronError(f"{field} field has {part!r}, which does not parse — use *, N, A-B, */S, A-B/S or lists")
    body, step_text = match[1], match[2]
    step = int(step_text) if step_text else 1
    if body == "*":
        first, last = low, high
    elif "-" in body:
        first_text, last_text = body.split("-", 1)
        first, last = _value(first_text, names, field), _value(last_text, names, field)
    else:
        first = _value(body, names, field)
        last = high if step_text else first
    if not (low <= first <= high and low <= last <= high) or first > last or step < 1:
        raise CronError(f"{field} field has {part!r}, outside {low}-{high} — use values from {low} to {high}")
    return set(range(first, last + 1, step))


def _parse_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        values |= _parse_part(part, field, low, high, names)
    return values


def _parse_weekdays(text: str) -> frozenset[int]:
    cron_days = _parse_field(text, "day of week", 0, 7, _WEEKDAYS)
    return frozenset((d - 1) % 7 for d in cron_days)  # cron 0/7 = Sunday -> Python 6, cron 1 = Monday -> 0


@lru_cache(maxsize=1024)
def parse_cron(expr: str) -> CronSpec:
    """Parse a five-field cron expression (cached: many schedules share one)."""
    text = " ".join(expr.lower().split())
    text = _SHORTHANDS.get(text, text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise CronError(
            f"has {len(fields)} fields — use 5: minute hour day-of-month month day-of-week, e.g. '0 20 * * *'"
        )
    minutes, hours, days, months = (
        _parse_field(value, name, low, high, names)
        for value, (name, low, high, names) in zip(fields[:4], _FIELDS, strict=True)
    )
    return CronSpec(
        expr=expr,
        times=tuple(sorted((h, m) for h in hours for m in minutes)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=_parse_weekdays(fields[4]),
        days_or=not fields[2].startswith("*") and not fields[4].startswith("*"),
    )


@lru_cache(maxsize=1024)
def min_gap_seconds(spec: CronSpec) -> int:
    """The shortest wall-clock distance between two consecutive occurrences, ignoring DST.

    Raises CronError if the expression never fires (e.g. 30 February).
    """
    matching = [d for d in range(_GAP_SCAN_DAYS) if spec.day_matches(_EPOCH_DAY + d * _DAY)]
    if not matching:
        raise CronError("never fires (no date matches its day and month fields) — check the day and month fields")
    minutes = [h * 60 + m for h, m in spec.times]
    gaps = [b - a for a, b in itertools.pairwise(minutes)]
    day_gaps = [b - a for a, b in itertools.pairwise(matching)]
    if day_gaps:
        gaps.append(min(day_gaps) * 1440 - (minutes[-1] - minutes[0]))
    return min(gaps) * 60 if gaps else _GAP_SCAN_DAYS * 86400


def _transition_after(zone: ZoneInfo, low: int, high: int) -> int:
    """The first instant in (low, high] whose UTC offset differs from low's (binary search, 1 s resolution)."""
    before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return high


def local_instant(day: date, hour: int, minute: int, zone: ZoneInfo) -> int:
    """Unix seconds of a local wall time; see the module docstring for nonexistent and repeated times."""
    first = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    second = first.replace(fold=1)
    if first.utcoffset() == second.utcoffset():
        return int(first.timestamp())
    early, late = sorted((int(first.timestamp()), int(second.timestamp())))
    if datetime.fromtimestamp(early, zone).replace(tzinfo=None) == first.replace(tzinfo=None):
        return early  # repeated time: its first occurrence
    return _transition_after(zone, early, late)  # skipped time: the instant the clocks jump


def occurrences(spec: CronSpec, zone: ZoneInfo, *, since: int, until: int) -> Iterator[int]:
    """Occurrence instants (unix s) t with since <= t < until, strictly ascending."""
    day = datetime.fromtimestamp(since, UTC).astimezone(zone).date() - _DAY
    last_day = datetime.fromtimestamp(until, UTC).astimezone(zone).date() + _DAY
    previous = since - 1
    while day <= last_day:
        if spec.day_matches(day):
            for hour, minute in spec.times:
                instant = local_instant(day, hour, minute, zone)
                if previous < instant < until:
                    yield instant
                    previous = instant
        day += _DAY
