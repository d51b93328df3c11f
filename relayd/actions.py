"""The console's two safe actions, carried out by the running daemon (``relayd.web.views.ConsoleActions``).

"Retry now" only moves a failing segment's next attempt to now (a failed one also gets a fresh attempt budget) and
wakes its schedule: the reconcile pass then confirms with the platform and restarts exactly as it would have at the
end of the backoff — no platform call here, no second path to the platform. "Release held removals" hands over to
the mass-removal guard's release when the daemon has one (``release``); without it nothing is ever held, and the
answer is an empty list. Neither changes desired state: that stays in the config directory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import structlog

from relayd.ids import ScheduleId, SegmentKey
from relayd.jobs import Jobs
from relayd.store import SegmentRecord, SegmentState, StateStore

log = structlog.get_logger("relayd.actions")

Release = Callable[[], Awaitable[Sequence[ScheduleId]]]


def retried(record: SegmentRecord, now: float) -> SegmentRecord | None:
    """The record with its next attempt due now, or None when the segment is not retrying or failed.

    A failed segment becomes retrying with a fresh budget (``attempts`` 0), so the pass restarts it at once instead
    of waiting for its slow retry; a retrying one keeps its count (the budget still bounds an operator's clicks)."""
    if record.state is SegmentState.RETRYING:
        return replace(record, next_attempt_at=now)
    if record.state is SegmentState.FAILED:
        return replace(record, state=SegmentState.RETRYING, attempts=0, next_attempt_at=now)
    return None


class DaemonActions:
    """``ConsoleActions`` over the daemon's store and timers."""

    def __init__(
        self, *, store: StateStore, jobs: Jobs, clock: Callable[[], float], release: Release | None = None
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._clock = clock
        self._release = release

    async def retry_now(self, key: SegmentKey) -> bool:
        record = self._store.segment(key)
        now = self._clock()
        changed = retried(record, now) if record is not None else None
        if record is None or changed is None:
            return False
        await self._store.put(changed)
        self._jobs.wake(changed.schedule_id, now)
        log.info("retry_now", segment_key=key, schedule_id=changed.schedule_id, was=record.state.value)
        return True

    async def release_removals(self) -> Sequence[ScheduleId]:
        if self._release is None:
            return ()
        return await self._release()
