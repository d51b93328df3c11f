"""Where a VOD playlist is at a hand-off, as the platform's VodSrcAddrs + CycleMode. Pure.

With every item's length known (``duration`` or ``end_offset``), the playlist is a periodic function of time:
at ``elapsed`` seconds after the window (or occurrence) started, it is ``elapsed mod period`` into the current
pass, i.e. at item *i*, *offset* seconds in. The next segment's task therefore plays the playlist *rotated*:

    [item i from offset, item i+1, ..., item n-1, item 0, ..., item i-1, item i up to offset]

One pass of that list takes exactly one period and ends where it began, so the platform's looping stays
correct; the extra entry (item *i* split in two) is why a timed playlist may hold at most 29 items.
``CycleMode`` carries the remaining loop count (the pass in progress counts as one); the planner ends the
schedule at the instant the last loop finishes. Offsets are rounded to milliseconds.

Without known lengths relayd cannot know the position, so every segment starts the playlist afresh with the
full loop count (documented for operators).
"""

from __future__ import annotations

import math
from typing import Any

from relayd.schedules.model import PlaylistItem, VodSource

_EPSILON = 1e-6


def _addr(item: PlaylistItem, *, start: float | None = None, end: float | None = None) -> dict[str, Any]:
    addr: dict[str, Any] = {"SrcAddr": item.url}
    start = start if start is not None else item.start_offset
    end = end if end is not None else item.end_offset
    if start is not None:
        addr["StartOffset"] = start
    if end is not None:
        addr["EndOffset"] = end
    return addr


def cycle_mode(loop: int | str) -> int:
    """The platform's CycleMode for a loop setting: -1 forever, else the loop count."""
    return -1 if loop == "forever" else int(loop)


def play_seconds(source: VodSource) -> float | None:
    """How long a finite, timed playlist plays in total (loops x period); None if forever or unknown."""
    period = source.period
    if period is None or source.loop == "forever":
        return None
    return int(source.loop) * period


def locate(items: list[PlaylistItem], into: float) -> tuple[int, float]:
    """(item index, seconds into that item's playable part) for a position ``into`` one pass."""
    acc = 0.0
    for index, item in enumerate(items):
        length = item.length or 0.0
        if into < acc + length - _EPSILON:
            return index, max(0.0, into - acc)
        acc += length
    return 0, 0.0


def rotated(items: list[PlaylistItem], index: int, offset: float) -> list[dict[str, Any]]:
    """The playlist starting at item ``index``, ``offset`` seconds into it, for exactly one period."""
    order = items[index:] + items[:index]
    if offset < 0.0005:
        return [_addr(item) for item in order]
    head = items[index]
    cut = round((head.start_offset or 0.0) + offset, 3)
    return [_addr(head, start=cut), *(_addr(item) for item in order[1:]), _addr(head, end=cut)]


def playlist_at(source: VodSource, elapsed: int) -> dict[str, Any]:
    """VodSrcAddrs and CycleMode for a task starting ``elapsed`` seconds after the playlist began."""
    period = source.period
    if period is None or period <= 0:
        return {"VodSrcAddrs": [_addr(item) for item in source.playlist], "CycleMode": cycle_mode(source.loop)}
    loops_done = math.floor(elapsed / period)
    into = elapsed - loops_done * period
    if into >= period - _EPSILON:
        loops_done, into = loops_done + 1, 0.0
    index, offset = locate(source.playlist, into)
    cycle = -1 if source.loop == "forever" else int(source.loop) - loops_done
    return {"VodSrcAddrs": rotated(source.playlist, index, offset), "CycleMode": cycle}
