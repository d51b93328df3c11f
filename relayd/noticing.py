"""Callback notices, from the HTTP handler to the reconciler.

The callback handler has answered the platform already (it must within ~4 s) and only calls :meth:`Notices.hint`,
which enqueues. :meth:`Notices.run`, one supervised loop, takes each notice in turn: a failure or stop is
remembered on the segment (so the next pass confirms it with a listing and acts), a recovery clears a pending
failure reported before it, a notice from a task relayd does not know makes the next pass list the segment's
Title afresh (so that task is adopted or removed as a duplicate), and always the schedule is submitted for a
reconcile pass.

A stream found stalled by the health check (``relayd.streams``) arrives the same way, as :meth:`Notices.stalled`:
it is written to the event log and handled like a failure callback.

The path of a callback: ``web/callbacks.py`` (verify, record, hint) → ``Notices.hint`` → ``Notices.run`` →
``Engine.note_failure`` / ``note_recovery`` → ``ReconcileQueue.submit`` → ``Engine.reconcile``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from relayd.engine import Engine
from relayd.ids import ScheduleId, SegmentKey
from relayd.store import Event, StateStore, StoreWriteError
from relayd.web.notices import CallbackEvent, CallbackNotice

log = structlog.get_logger("relayd.noticing")

_FAILURE_EVENTS = frozenset({CallbackEvent.FAIL, CallbackEvent.STOP})
STREAM_STALLED = "stream_stalled"


@dataclass(frozen=True, slots=True)
class _Notice:
    schedule_id: ScheduleId
    key: SegmentKey
    notice: CallbackNotice


class Notices:
    def __init__(self, engine: Engine, store: StateStore, submit: Callable[[ScheduleId], None]) -> None:
        self._engine = engine
        self._store = store
        self._submit = submit
        self._queue: asyncio.Queue[_Notice] = asyncio.Queue()

    def hint(self, schedule_id: ScheduleId, key: SegmentKey, notice: CallbackNotice) -> None:
        """The web layer's ``ReconcileHint``: enqueue only, never block."""
        self._queue.put_nowait(_Notice(schedule_id, key, notice))

    def stalled(self, schedule_id: ScheduleId, key: SegmentKey, at: float, since: float) -> None:
        """The segment's stream stopped advancing at ``since`` (seen at ``at``): a failure signal."""
        raw = {"stalled_since": since}
        notice = CallbackNotice(None, CallbackEvent.FAIL, STREAM_STALLED, at, None, raw)
        self.hint(schedule_id, key, notice)

    async def run(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while True:
                getter = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return
                await self.apply(getter.result())
        finally:
            stopper.cancel()

    async def apply(self, item: _Notice) -> None:
        notice = item.notice
        if notice.status == STREAM_STALLED and notice.time is not None:
            data = dict(notice.raw)
            event = Event(notice.time, STREAM_STALLED, item.schedule_id, item.key, data=data)
            await self._store.add_event(event)
        try:
            if notice.unknown_task:
                # Not the segment's own task: its events say nothing about that one; look at the Title instead.
                self._engine.recheck_title(item.key)
            elif notice.event in _FAILURE_EVENTS:
                await self._engine.note_failure(item.key, notice.time)
            elif notice.event == CallbackEvent.RECOVER:
                await self._engine.note_recovery(item.key, notice.time)
        except StoreWriteError as error:  # e.g. fenced: another instance leads now; the callback is in the history
            log.warning("notice_not_recorded", segment_key=item.key, error=str(error))
        self._submit(item.schedule_id)
