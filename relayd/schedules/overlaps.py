"""Schedules that push to one destination at the same time. Domain layer: pure, no I/O, no clock reads.

Why: two relays pushing one stream collide on the receiving side (one kicks the other, or both flap), and
nothing in either file is wrong on its own, so the loader accepts both. This finds such pairs so the loader
can *warn*: a warning never rejects a file, because the operator may mean it (a short overlap while moving a
relay) and rejecting would stop a relay that runs.

A destination is its host and path (``push.example.com/live/main``), so a URL and the same
``{domain, app, stream}`` match, and a query string (often an auth token) neither matters nor is shown.
Windows are compared whole. A recurrence is expanded over ``[now, now + horizon_s)`` only, at most
``max_intervals`` intervals in all: the check is a best-effort warning and must stay cheap on any directory.
Only destinations used by two or more enabled schedules are expanded at all.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from relayd.schedules.model import Destination, Schedule, zone
from relayd.schedules.recurrence import occurrences, parse_cron

DEFAULT_HORIZON_S = 14 * 86400
MAX_INTERVALS = 100_000


@dataclass(frozen=True, slots=True)
class Overlap:
    """``second`` starts pushing to ``destination`` at ``start`` while ``first`` still does."""

    destination: str
    first: Schedule
    second: Schedule
    start: int


def destination_key(destination: Destination) -> str:
    """Host (lower case, with any port) and path of a destination: no scheme, credentials or query."""
    if destination.url is None:
        return f"{(destination.domain or '').lower()}/{destination.app}/{destination.stream}"
    parts = urlsplit(destination.url)
    host = (parts.hostname or "") + (f":{parts.port}" if _port(parts.netloc) else "")
    return host + parts.path.rstrip("/")


def _port(netloc: str) -> bool:
    return ":" in netloc.rpartition("@")[2].rpartition("]")[2]


def _intervals(schedule: Schedule, now: int, horizon_s: int, room: int) -> Iterator[tuple[float, float]]:
    """[start, end) of each time the schedule pushes, from now on (end may be infinite)."""
    if schedule.window is not None:
        end = math.inf if schedule.window.end is None else schedule.window.end.timestamp()
        if end > now:
            yield schedule.window.start.timestamp(), end
        return
    rec = schedule.recurrence
    assert rec is not None
    since = max(now - rec.duration, int(rec.start.timestamp()) if rec.start else now - rec.duration)
    until = min(now + horizon_s, int(rec.end.timestamp()) if rec.end else now + horizon_s)
    for count, start in enumerate(occurrences(parse_cron(rec.cron), zone(rec.timezone), since=since, until=until)):
        if count >= room:
            return
        yield start, start + rec.duration


def find_overlaps(
    schedules: Sequence[Schedule],
    *,
    now: int,
    horizon_s: int = DEFAULT_HORIZON_S,
    max_intervals: int = MAX_INTERVALS,
) -> list[Overlap]:
    """Each pair of enabled schedules that push to one destination at once, by the first such instant."""
    by_destination: dict[str, list[Schedule]] = defaultdict(list)
    for schedule in schedules:
        if schedule.enabled:
            by_destination[destination_key(schedule.destination)].append(schedule)
    found: list[Overlap] = []
    room = max_intervals
    for key, group in by_destination.items():
        if len(group) < 2:
            continue
        spans = [(s, e, item) for item in group for s, e in _intervals(item, now, horizon_s, room)]
        room -= len(spans)
        found += _sweep(key, spans)
        if room <= 0:
            break
    return sorted(found, key=lambda o: (o.start, o.first.id, o.second.id))


def _sweep(key: str, spans: list[tuple[float, float, Schedule]]) -> list[Overlap]:
    """Pairs whose intervals intersect: sorted by start, each interval against the one reaching furthest."""
    pairs: dict[tuple[str, str], Overlap] = {}
    reach: tuple[float, Schedule] | None = None
    for start, end, schedule in sorted(spans, key=lambda span: (span[0], span[1], span[2].id)):
        if reach is not None and start < reach[0] and reach[1].id != schedule.id:
            pair = (reach[1].id, schedule.id)
            pairs.setdefault(pair, Overlap(key, reach[1], schedule, int(start)))
        if reach is None or end > reach[0]:
            reach = (end, schedule)
    return list(pairs.values())
