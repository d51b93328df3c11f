"""Callback notices, from the HTTP handler to the reconciler.

The callback handler has answered the platform already (it must within ~4 s) and only calls :meth:`Notices.hint`,
which enqueues. :meth:`Notices.run`, one supervised loop, takes each notice in turn: a failure or stop is
remembered on the segment (so the next pass confirms it with a listing and acts), a recovery clears a pending
failure reported before it, a notice from a task relayd does not know makes the next pass list the segment's
Title afresh (so that task is adopted or removed as a duplicate), and always the schedule is submitted for a
reconcile pass.

The path of a callback: ``web/callbacks.py`` (verify, record, hint) → ``Notices.hint`` → ``Notices.run`` →
``Engine.note_failure`` / ``note_recovery`` → ``ReconcileQueue.submit`` → ``Engine.reconcile``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from relayd.engine import Engine
from relayd.ids import ScheduleId, SegmentKey
from relayd.web.notices import CallbackEvent, CallbackNotice

_FAILURE_EVENTS = frozenset({CallbackEvent.FAIL, CallbackEvent.STOP})


@dataclass(frozen=True, slots=True)
class _Notice:
    schedule_id: ScheduleId
    key: SegmentKey
    notice: CallbackNotice


class Notices:
    def __init__(self, engine: Engine, submit: Callable[[ScheduleId], None]) -> None:
        self._engine = engine
        self._submit = submit
        self._queue: asyncio.Queue[_Notice] = asyncio.Queue()

    def hint(self, schedule_id: ScheduleId, key: SegmentKey, notice: CallbackNotice) -> None:
        """The web layer's ``ReconcileHint``: enqueue only, never block."""
        self._queue.put_nowait(_Notice(schedule_id, key, notice))

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
        if notice.unknown_task:
            # Not the segment's own task: its events say nothing about that one; look at the Title instead.
            self._engine.recheck_title(item.key)
        elif notice.event in _FAILURE_EVENTS:
            await self._engine.note_failure(item.key, notice.time)
        elif notice.event == CallbackEvent.RECOVER:
            await self._engine.note_recovery(item.key, notice.time)
        self._submit(item.schedule_id)
