"""Gaps and overlaps on a destination, for the timeline's warning colour — pure, records in, flags out.

Why: two tasks pushing one destination collide, and a chain whose next segment starts after the previous one ended
leaves the destination silent. The planner never produces either, so when the store shows one, something
(an edit, an adoption, a foreign schedule on the same destination) needs an operator's eye. A gap only counts
inside one chain (same schedule, same occurrence, consecutive indexes): a daily recurrence's nights are not gaps.
Destinations are compared by the Create body's ``DstAddr`` (or domain/app/stream) and never leave this module,
since a push URL may carry a stream key.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from enum import StrEnum

from relayd.ids import SegmentKey
from relayd.store import SegmentRecord, SegmentState

_GONE = frozenset({SegmentState.DELETED, SegmentState.REMOVING})


class ChainWarning(StrEnum):
    GAP_BEFORE = "gap_before"
    """This segment starts after the previous segment of its chain ended."""
    OVERLAP = "overlap"
    """Another segment pushes the same destination during part of this one's window."""


def destination_of(seg: SegmentRecord) -> str | None:
    body = seg.body or {}
    if body.get("DstAddr"):
        return str(body["DstAddr"])
    parts = (body.get("Domain"), body.get("App"), body.get("Stream"))
    return "/".join(str(p) for p in parts) if all(parts) else None


def warnings(
    segments: Iterable[SegmentRecord], spans: dict[SegmentKey, list[tuple[int, int]]] | None = None
) -> dict[SegmentKey, list[ChainWarning]]:
    """Every live segment that overlaps another on its destination or opens a gap in its chain (``spans``: the
    segments' :func:`overlap_spans`, when the caller has them already)."""
    live = [s for s in segments if s.state not in _GONE]
    found: dict[SegmentKey, list[ChainWarning]] = defaultdict(list)
    for key in overlap_spans(live) if spans is None else spans:
        found[key].append(ChainWarning.OVERLAP)
    for key in _gaps(live):
        found[key].append(ChainWarning.GAP_BEFORE)
    return dict(found)


def sharing_destinations(wanted: Iterable[SegmentRecord], every: Iterable[SegmentRecord]) -> list[SegmentRecord]:
    """The segments of ``every`` on a destination one of ``wanted`` pushes: all that can overlap or chain with them
    (so the marks of a few schedules need not be worked out over every segment)."""
    destinations = {destination_of(s) for s in wanted} - {None}
    return [s for s in every if destination_of(s) in destinations]


def overlap_spans(segments: Iterable[SegmentRecord]) -> dict[SegmentKey, list[tuple[int, int]]]:
    """For every live segment that overlaps another on its destination, the stretches of its window it shares
    (the timeline draws them in the warning colour)."""
    by_destination: dict[str, list[SegmentRecord]] = defaultdict(list)
    for seg in segments:
        if seg.state not in _GONE and (dst := destination_of(seg)) is not None:
            by_destination[dst].append(seg)
    spans: dict[SegmentKey, list[tuple[int, int]]] = defaultdict(list)
    for group in by_destination.values():
        group.sort(key=lambda s: (s.start, s.end))
        for i, seg in enumerate(group):
            for other in _starting_before(group, i + 1, seg.end):
                shared = (other.start, min(seg.end, other.end))
                spans[seg.key].append(shared)
                spans[other.key].append(shared)
    return dict(spans)


def _starting_before(ordered: list[SegmentRecord], first: int, end: int) -> Iterator[SegmentRecord]:
    """``ordered[first:]`` (sorted by start) while they start before ``end``: no copy, no walk past the last."""
    j = first
    while j < len(ordered) and ordered[j].start < end:
        yield ordered[j]
        j += 1


def _gaps(live: list[SegmentRecord]) -> set[SegmentKey]:
    chains: dict[tuple[str, int | None], list[SegmentRecord]] = defaultdict(list)
    for seg in live:
        chains[(seg.schedule_id, seg.occurrence)].append(seg)
    keys: set[SegmentKey] = set()
    for chain in chains.values():
        chain.sort(key=lambda s: s.index)
        for before, after in itertools.pairwise(chain):
            if after.index == before.index + 1 and after.start > before.end:
                keys.add(after.key)
    return keys
