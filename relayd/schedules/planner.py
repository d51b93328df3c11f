"""Planning: a Schedule, the task cap and ``now`` in; the segments the daemon should keep out. Pure.

A window [start, end) — or each occurrence of a recurrence — is cut into consecutive segments of at most
``max_task_seconds``: segment k is [start + k*cap, min(start + (k+1)*cap, end)). Segments touch exactly, so
there is never a gap or an overlap on the destination, and extending ``end`` changes only the last segment.
Only segments with ``end > now`` and ``start < now + horizon_s`` are returned, so a forever schedule is
planned lazily in O(horizon / cap).

Identity: a window segment's key is ``<id>.<k>``; a recurrence segment's is ``<id>.<occurrence start unix>.<k>``.
Schedule ids cannot contain dots, so keys never collide. The platform Title is :func:`title_for` the key, at the
Title length the platform allows (``title_length``).

Recurrences: occurrences are evaluated in the schedule's time zone (see relayd.schedules.recurrence for DST);
each lasts ``duration`` but is cut short at the next occurrence's start if a DST change would make them
overlap. VOD continuity is per window or occurrence (see relayd.schedules.vod); a finite timed playlist ends
the window when its last loop finishes.

``spec_hash`` covers start, end, title, group and body: if it differs from what a task was created with, the
task must be updated. It covers the *full* (20-character) tag whatever the Title length: changing the length alone
changes no hash, so it updates no task (the tags of both lengths find the same task, see relayd.schedules.titles).
The watermark picture enters it by its own hash, computed once per distinct picture.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from relayd.ids import SegmentKey
from relayd.schedules import vod
from relayd.schedules.model import Destination, LiveSource, Recurrence, Schedule, Segment, VodSource, zone
from relayd.schedules.recurrence import occurrences, parse_cron
from relayd.schedules.titles import TitleLength, is_relayd_title, title_for

__all__ = ["TitleLength", "base_body", "is_relayd_title", "plan", "title_for"]

_CONTINUE = {"resume": 0, "catch_up": 1}


@lru_cache(maxsize=64)
def _picture_hash(picture: str) -> str:
    return hashlib.sha256(picture.encode()).hexdigest()


def _destination_body(destination: Destination) -> dict[str, Any]:
    if destination.url is not None:
        return {"DstAddr": destination.url}
    return {"Domain": destination.domain, "App": destination.app, "Stream": destination.stream}


def base_body(schedule: Schedule) -> dict[str, Any]:
    """The Create body fields common to all of a schedule's segments (VOD position excluded)."""
    body: dict[str, Any] = {}
    if isinstance(schedule.source, LiveSource):
        body.update(Type=0, SrcAddr=schedule.source.url)
    else:
        body["Type"] = 1
        if schedule.pre_download is not None:
            body["PreDownload"] = int(schedule.pre_download)
        if schedule.continue_strategy is not None:
            body["ContinueStrategy"] = _CONTINUE[schedule.continue_strategy]
    body.update(_destination_body(schedule.destination))
    mark = schedule.watermark
    if mark is not None and mark.picture:
        body["Watermark"] = {
            "Picture": mark.picture,
            "Ratio": mark.ratio,
            "RelativePosX": mark.x,
            "RelativePosY": mark.y,
        }
    return body


def _hashable(body: dict[str, Any]) -> str:
    mark = body.get("Watermark")
    if mark is not None:
        body = {**body, "Watermark": {**mark, "Picture": _picture_hash(mark["Picture"])}}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


class _Builder:
    """Per-plan-call constants of one schedule, so each segment costs one small dict and two hashes."""

    def __init__(self, schedule: Schedule, namespace: str, title_length: TitleLength) -> None:
        self.schedule = schedule
        self.namespace = namespace
        self.title_length = title_length
        self.base = base_body(schedule)
        self.base_text = _hashable(self.base)
        self.vod = schedule.source if isinstance(schedule.source, VodSource) else None

    def segment(self, occurrence: int | None, index: int, start: int, end: int, origin: int) -> Segment:
        sid = self.schedule.id
        key = SegmentKey(f"{sid}.{index}" if occurrence is None else f"{sid}.{occurrence}.{index}")
        title = title_for(key, self.namespace, self.title_length)
        extra = vod.playlist_at(self.vod, start - origin) if self.vod is not None else {}
        group = self.schedule.group
        extra_text = json.dumps(extra, sort_keys=True) if extra else ""
        full = title if self.title_length == TitleLength.FULL else title_for(key, self.namespace)
        text = f"{start}|{end}|{full}|{group or ''}|{self.base_text}|{extra_text}"
        return Segment(
            schedule_id=sid,
            key=key,
            index=index,
            occurrence=occurrence,
            start=start,
            end=end,
            title=title,
            group=group,
            body=MappingProxyType({**self.base, **extra}),
            spec_hash=hashlib.sha256(text.encode()).hexdigest(),
            callbacks=self.schedule.callbacks,
        )

    def play_end(self, origin: int, end: int | None) -> int | None:
        """The window's end, pulled in to when a finite timed playlist runs out."""
        total = vod.play_seconds(self.vod) if self.vod is not None else None
        if total is None:
            return end
        exhausted = origin + math.ceil(total)
        return exhausted if end is None else min(end, exhausted)


def _occurrence_windows(rec: Recurrence, now: int, until: int) -> Iterator[tuple[int, int]]:
    """(start, end) of occurrences that may overlap [now, until), each cut at the next one's start."""
    lower = now - rec.duration
    upper = until + rec.duration  # look one occurrence past the horizon: it may cut the last one short
    if rec.start is not None:
        lower = max(lower, int(rec.start.timestamp()))
    if rec.end is not None:
        upper = min(upper, int(rec.end.timestamp()))
    starts = list(occurrences(parse_cron(rec.cron), zone(rec.timezone), since=lower, until=upper))
    for position, start in enumerate(starts):
        if start >= until:
            return
        end = start + rec.duration
        if position + 1 < len(starts):
            end = min(end, starts[position + 1])
        yield start, end


def _windows(schedule: Schedule, now: int, until: int) -> Iterator[tuple[int | None, int, int | None]]:
    if schedule.window is not None:
        stop = schedule.window.end
        yield None, int(schedule.window.start.timestamp()), None if stop is None else int(stop.timestamp())
    elif schedule.recurrence is not None:
        for start, end in _occurrence_windows(schedule.recurrence, now, until):
            yield start, start, end


def _split(
    builder: _Builder, occurrence: int | None, origin: int, end: int | None, *, now: int, until: int, cap: int
) -> Iterator[Segment]:
    end = builder.play_end(origin, end)
    index = max(0, (now - origin) // cap)
    while True:
        start = origin + index * cap
        if start >= until or (end is not None and start >= end):
            return
        stop = start + cap if end is None else min(start + cap, end)
        if stop > now:
            yield builder.segment(occurrence, index, start, stop, origin)
        index += 1


def plan(
    schedule: Schedule,
    *,
    now: int,
    max_task_seconds: int,
    horizon_s: int,
    namespace: str = "relayd",
    title_length: TitleLength = TitleLength.FULL,
) -> list[Segment]:
    """The segments to keep at ``now``: every one with end > now and start < now + horizon_s, in order."""
    if max_task_seconds < 1:
        raise ValueError(f"max_task_seconds must be >= 1 (got {max_task_seconds})")
    until = now + max(0, horizon_s)
    builder = _Builder(schedule, namespace, title_length)
    return [
        segment
        for occurrence, origin, end in _windows(schedule, now, until)
        for segment in _split(builder, occurrence, origin, end, now=now, until=until, cap=max_task_seconds)
    ]
