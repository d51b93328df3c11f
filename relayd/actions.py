"""The operator's two actions on a running daemon (``relayd.web.views.ConsoleActions``): retry a segment now, and
release the removals the removal guard holds.

Neither changes desired state (that stays in the config directory) and neither calls the platform: each writes
what the reconciler needs to act differently, then asks for a pass. The reconciler does the rest, as it would on
any other trigger, so the console, ``relayd apply`` and a timer can never disagree about what happens next.

* ``retry_now``: a ``retrying`` segment is made due at once; a ``failed`` one also gets a fresh attempt budget
  (``pending`` without a task, so it is created; ``retrying`` with one, so its failure is acted on again).
* ``release_removals``: approves exactly the ids held now and triggers a reload, which removes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import structlog

from relayd.ids import ScheduleId, SegmentKey
from relayd.jobs import Jobs
from relayd.removals import RemovalHold
from relayd.store import SegmentRecord, SegmentState, StateStore

log = structlog.get_logger("relayd.actions")

RETRYABLE = frozenset({SegmentState.RETRYING, SegmentState.FAILED})


def retried(record: SegmentRecord, now: float) -> SegmentRecord:
    """The record made due for an attempt at ``now``; a failed one starts a fresh attempt budget."""
    if record.state != SegmentState.FAILED:
        return dataclasses.replace(record, next_attempt_at=now)
    state = SegmentState.RETRYING if record.task_id is not None else SegmentState.PENDING
    return dataclasses.replace(record, state=state, attempts=0, next_attempt_at=now)


class Actions:
    """``ConsoleActions`` over the store, the timers and the removal hold."""

    def __init__(
        self,
        *,
        store: StateStore,
        jobs: Jobs,
        removals: RemovalHold,
        reload: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._removals = removals
        self._reload = reload
        self._clock = clock

    async def retry_now(self, key: SegmentKey) -> bool:
        record = self._store.segment(key)
        if record is None or record.state not in RETRYABLE:
            return False
        now = self._clock()
        await self._store.put(retried(record, now))
        self._jobs.wake(record.schedule_id, now)
        log.info("retry_requested", segment_key=key, schedule_id=record.schedule_id, state=str(record.state))
        return True

    async def release_removals(self) -> Sequence[ScheduleId]:
        released = self._removals.release()
        if released:
            self._reload()
        return released
