"""Copy the whole state of one store into another (SQLite <-> PostgreSQL), for ``relayd state migrate``.

Why through the store protocol rather than table by table: the copy then goes through the same serialisation and
the same writes as the daemon's, so what lands is exactly what the target backend would have written itself, and
a third backend gets migration for free. Segments keep their timestamps; events keep their time, kind and dedupe key
(ids are renumbered by the target, in the same order).

The source must be stopped: a SQLite source is opened with its lock (a running daemon holds it), and a PostgreSQL
source's lease is taken for the copy (refused while an instance leads). The target must be empty, so a copy never
merges two histories.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from relayd.store.errors import StoreError
from relayd.store.protocol import SharedStore
from relayd.store.records import Event

EVENT_PAGE = 2000


@dataclass(frozen=True, slots=True)
class Copied:
    segments: int
    applied: int
    meta: int
    events: int


async def copy_state(source: SharedStore, target: SharedStore) -> Copied:
    """Copy everything from ``source`` into the empty ``target``."""
    await _ensure_empty(target)
    segments = source.segments(include_deleted=True)
    await target.put_many(segments, stamp=False)
    applied = source.applied()
    await asyncio.gather(*(target.set_applied(item) for item in applied.values()))
    names = source.meta_names()
    for name in names:
        value = source.meta(name)
        if value is not None:
            await target.set_meta(name, value)
    events = await _copy_events(source, target)
    await target.flush()
    return Copied(len(segments), len(applied), len(names), events)


async def _ensure_empty(target: SharedStore) -> None:
    if target.segments(include_deleted=True) or target.applied() or target.meta_names() or await target.count_events():
        raise StoreError(
            f"the target {target.location} already holds relayd state; migrate into an empty one "
            "(a new file, or another database_schema)"
        )


async def _copy_events(source: SharedStore, target: SharedStore) -> int:
    """Oldest first, so the target's ids keep the source's order."""
    history: list[Event] = []
    before: int | None = None
    while True:
        page = await source.events(limit=EVENT_PAGE, before_id=before)
        history.extend(page)
        if len(page) < EVENT_PAGE:
            break
        before = page[-1].id
    history.reverse()
    for start in range(0, len(history), EVENT_PAGE):
        chunk = history[start : start + EVENT_PAGE]
        await asyncio.gather(*(target.add_event(_unnumbered(e)) for e in chunk))
    return len(history)


def _unnumbered(event: Event) -> Event:
    return Event(event.ts, event.kind, event.schedule_id, event.segment_key, event.task_id, event.dedupe_key,
                 event.data, event.raw)  # fmt: skip
