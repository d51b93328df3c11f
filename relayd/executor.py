"""The thin shell around the reconcile decisions: performs one action, records its outcome.

Rules this module keeps:
- Intent before effect: a Create is preceded by a durable CREATING record carrying the exact body, so a crash
  between the two is repaired by adopting the task by its Title instead of creating a duplicate.
- Every outcome is written to the store (task id, state, attempts, last error with its RequestId) and to the
  event history, and logged with schedule id, segment key, task id and request id.
- A platform error never escapes: it is classified (terminal, retryable, outcome unknown) and turned into the
  record's next step. Only the store's own write errors propagate (the reconcile pass then stops and the
  periodic resync retries).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from relayd.backoff import backoff_delay
from relayd.ids import SegmentKey, TaskId
from relayd.observations import Observations, Platform, status_at
from relayd.reconcile import Action, ActionKind, ObservedTask, Policy, create_body, timely_state
from relayd.schedules.model import Segment
from relayd.store import Event, SegmentRecord, SegmentState, Store
from relayd.volc.errors import ApiError, LiveError, TransportError

log = structlog.get_logger("relayd.executor")

CallbackUrl = Callable[[SegmentKey], str | None]
Outcome = Callable[[str, str], None]  # (action kind, outcome) for metrics


def _error_fields(error: LiveError) -> dict[str, Any]:
    if isinstance(error, ApiError):
        return {"code": error.code, "request_id": error.request_id, "error": str(error)}
    return {"code": type(error).__name__, "request_id": None, "error": str(error)}


def _not_found(error: LiveError) -> bool:
    return isinstance(error, ApiError) and error.code == "ResourceNotFound"


class Executor:
    def __init__(
        self,
        *,
        store: Store,
        platform: Platform,
        observations: Observations,
        callback_url: CallbackUrl,
        clock: Callable[[], float],
        rand: Callable[[], float],
        on_outcome: Outcome | None = None,
    ) -> None:
        self._store = store
        self._platform = platform
        self._obs = observations
        self._callback_url = callback_url
        self._clock = clock
        self._rand = rand
        self._on_outcome = on_outcome or (lambda kind, outcome: None)

    async def perform_all(self, actions: Sequence[Action], policy: Policy) -> None:
        """Perform ``actions`` in order; each run of consecutive SAVEs is written in one store operation."""
        for is_save, run in itertools.groupby(actions, key=lambda a: a.kind == ActionKind.SAVE):
            if is_save:
                await self._save_many(list(run))
                continue
            for action in run:
                await self.perform(action, policy)

    async def perform(self, action: Action, policy: Policy) -> None:
        handler = {
            ActionKind.SAVE: self._save,
            ActionKind.CREATE: self._create,
            ActionKind.ADOPT: self._adopt,
            ActionKind.UPDATE: self._update,
            ActionKind.CONTINUE: self._restart,
            ActionKind.RELAUNCH: self._restart,
            ActionKind.DELETE: self._delete,
            ActionKind.DELETE_DUPLICATE: self._delete_duplicate,
        }[action.kind]
        await handler(action, policy)

    # --- helpers --------------------------------------------------------------------------------------------

    async def _put(self, record: SegmentRecord, **changes: Any) -> SegmentRecord:
        updated = dataclasses.replace(record, updated_at=self._clock(), **changes)
        await self._store.put(updated)
        return updated

    def _event_nowait(self, kind: str, record: SegmentRecord, **data: Any) -> asyncio.Future[bool]:
        """Queue an event for the store's next commit; await the future to know it is durable."""
        event = Event(
            ts=self._clock(),
            kind=kind,
            schedule_id=record.schedule_id,
            segment_key=record.key,
            task_id=record.task_id,
            data={k: v for k, v in data.items() if v is not None},
        )
        return self._store.add_event_nowait(event)

    async def _event(self, kind: str, record: SegmentRecord, **data: Any) -> None:
        await self._event_nowait(kind, record, **data)

    def _log(self, record: SegmentRecord) -> Any:
        return log.bind(schedule_id=record.schedule_id, segment=record.key, task_id=record.task_id)

    def _retry_at(self, attempts: int, policy: Policy) -> float:
        delay = backoff_delay(
            attempts + 1, base=policy.create_retry_base, factor=2.0, cap=policy.create_retry_cap, rand=self._rand()
        )
        return self._clock() + delay

    def _observe_created(self, record: SegmentRecord, task_id: TaskId, start: int) -> None:
        status = status_at(start, record.end, self._clock())
        self._obs.saw(ObservedTask(task_id, record.title, status, start, record.end))

    # --- actions --------------------------------------------------------------------------------------------

    async def _save(self, action: Action, policy: Policy) -> None:
        await self._save_many([action])

    async def _save_many(self, actions: list[Action]) -> None:
        """Several SAVEs in one store write: a first pass of 10,000 schedules saves ~40,000 planned segments, and
        one commit round trip each made the store the start-up's bottleneck."""
        befores = [self._store.segment(a.record.key) for a in actions]
        await self._store.put_many(a.record for a in actions)
        for action, before in zip(actions, befores, strict=True):
            await self._saved(action, before)

    async def _saved(self, action: Action, before: SegmentRecord | None) -> None:
        if action.record.state == SegmentState.FAILED and (before is None or before.state != SegmentState.FAILED):
            self._log(action.record).error("segment_failed", reason=action.record.last_error)
            await self._event("failed", action.record, reason=action.record.last_error)
            self._on_outcome("restart", "budget_spent")
        elif before is None and action.record.state == SegmentState.PENDING:
            # A segment merely planned ahead is not news (a first pass plans ~4 per schedule); its creation is.
            log.debug("segment_planned", schedule_id=action.record.schedule_id, segment=action.record.key)
        elif before is None or before.state != action.record.state:
            self._log(action.record).info("segment_state", state=action.record.state.value, reason=action.reason)

    async def _create(self, action: Action, policy: Policy) -> None:
        segment = action.segment
        assert segment is not None
        restart = action.record.task_id is not None or action.reason == "missing"
        body = create_body(segment, now=self._clock(), callback_url=self._callback_url(segment.key))
        intent = await self._put(
            _from_segment(action.record, segment),
            state=SegmentState.CREATING,
            task_id=None,
            body=body,
            spec_hash=segment.spec_hash,
        )
        bound = self._log(intent)
        try:
            task_id = await self._platform.create(body)
        except LiveError as error:
            await self._create_failed(intent, error, policy, restart)
            return
        changes: dict[str, Any] = {"task_id": task_id, "state": timely_state(intent, self._clock())}
        changes |= {"last_error": None, "last_request_id": None, "next_attempt_at": None}
        if restart:
            changes |= {"attempts": intent.attempts + 1, "failure_seen_at": None, "healthy_since": self._clock()}
        else:
            changes["attempts"] = 0
        created = dataclasses.replace(intent, updated_at=self._clock(), **changes)
        # The record and its event go into one commit: one store round trip per create instead of two.
        event = self._event_nowait("create", created, start=body["StartTime"], end=body["EndTime"], restart=restart)
        await self._store.put(created)
        await event
        self._observe_created(created, task_id, int(str(body["StartTime"])))
        bound.info("task_created", task_id=task_id, start=body["StartTime"], end=body["EndTime"], restart=restart)
        self._on_outcome("recreate" if restart else "create", "ok")

    async def _create_failed(self, intent: SegmentRecord, error: LiveError, policy: Policy, restart: bool) -> None:
        fields = _error_fields(error)
        # A timeout leaves the outcome unknown: stay CREATING so the next pass looks the Title up first.
        state = SegmentState.CREATING if isinstance(error, TransportError) else SegmentState.PENDING
        terminal = isinstance(error, ApiError) and not error.retryable
        if terminal and not restart:
            state = SegmentState.FAILED
        record = await self._put(
            intent,
            state=state,
            attempts=intent.attempts + 1,
            next_attempt_at=None if terminal else self._retry_at(intent.attempts, policy),
            last_error=fields["error"],
            last_request_id=fields["request_id"],
        )
        handoff_in = record.start - self._clock()
        level = "error" if terminal or handoff_in < policy.prepare_ahead / 2 else "warning"
        getattr(self._log(record), level)(
            "task_create_failed", handoff_in_s=round(handoff_in, 1), next_attempt_at=record.next_attempt_at, **fields
        )
        await self._event("create_failed", record, **fields)
        self._on_outcome("create", str(fields["code"]))

    async def _adopt(self, action: Action, policy: Policy) -> None:
        task, segment = action.task, action.segment
        assert task is not None and segment is not None
        # Adopting after a crash mid-create: the intent's body and spec hash are what the task was created from.
        # Without an intent (store lost), force an Update so the task carries the current spec.
        spec_hash = action.record.spec_hash if action.record.state == SegmentState.CREATING else "adopted"
        record = await self._put(
            _from_segment(action.record, segment),
            task_id=task.task_id,
            state=timely_state(action.record, self._clock()),
            spec_hash=spec_hash,
        )
        self._log(record).info("task_adopted", task_id=task.task_id)
        await self._event("adopt", record)

    async def _update(self, action: Action, policy: Policy) -> None:
        segment, record = action.segment, action.record
        assert segment is not None and record.task_id is not None
        body = create_body(segment, now=self._clock(), callback_url=self._callback_url(segment.key))
        if segment.start <= self._clock() and record.start <= self._clock():
            body["StartTime"] = record.body.get("StartTime", body["StartTime"])  # running: keep its start
        body["TaskId"] = record.task_id
        try:
            await self._platform.update(body)
        except LiveError as error:
            fields = _error_fields(error)
            changes: dict[str, Any] = {"last_error": fields["error"], "last_request_id": fields["request_id"]}
            if _not_found(error):
                changes["failure_seen_at"] = self._clock()
            else:
                changes["next_attempt_at"] = self._retry_at(record.attempts, policy)
            await self._put(record, **changes)
            self._log(record).warning("task_update_failed", **fields)
            self._on_outcome("update", str(fields["code"]))
            return
        body.pop("TaskId")
        updated = await self._put(
            _from_segment(record, segment), spec_hash=segment.spec_hash, body=body, next_attempt_at=None
        )
        self._observe_created(updated, record.task_id, int(str(body["StartTime"])))
        self._log(updated).info("task_updated", start=body["StartTime"], end=body["EndTime"])
        await self._event("update", updated)
        self._on_outcome("update", "ok")

    async def _restart(self, action: Action, policy: Policy) -> None:
        record = action.record
        assert record.task_id is not None
        call = self._platform.resume if action.kind == ActionKind.CONTINUE else self._platform.relaunch
        kind = action.kind.value
        try:
            await call(record.task_id, record.group)
        except LiveError as error:
            fields = _error_fields(error)
            # Counted as an attempt so a task that keeps refusing cannot loop forever; the next pass re-confirms.
            await self._put(
                record,
                attempts=record.attempts + 1,
                next_attempt_at=None,
                last_error=fields["error"],
                last_request_id=fields["request_id"],
            )
            self._log(record).warning("task_restart_failed", action=kind, attempt=record.attempts + 1, **fields)
            await self._event("restart_failed", record, action=kind, **fields)
            self._on_outcome(kind, str(fields["code"]))
            return
        now = self._clock()
        restarted = await self._put(
            record,
            state=timely_state(record, now),
            attempts=record.attempts + 1,
            failure_seen_at=None,
            next_attempt_at=None,
            healthy_since=now,
            last_error=None,
            last_request_id=None,
        )
        self._obs.saw(
            ObservedTask(
                record.task_id, record.title, status_at(record.start, record.end, now), record.start, record.end
            )
        )
        self._log(restarted).info("task_restarted", action=kind, attempt=restarted.attempts, reason=action.reason)
        await self._event("restart", restarted, action=kind, attempt=restarted.attempts, reason=action.reason)
        self._on_outcome(kind, "ok")

    async def _delete(self, action: Action, policy: Policy) -> None:
        record = action.record
        assert record.task_id is not None
        try:
            await self._platform.delete(record.task_id, record.group)
        except LiveError as error:
            if not _not_found(error):
                fields = _error_fields(error)
                await self._put(
                    record,
                    next_attempt_at=self._retry_at(record.attempts, policy),
                    last_error=fields["error"],
                    last_request_id=fields["request_id"],
                )
                self._log(record).warning("task_delete_failed", **fields)
                self._on_outcome("delete", str(fields["code"]))
                return
        self._obs.gone(record.title, record.task_id)
        deleted = await self._put(record, state=SegmentState.DELETED, deleted_at=self._clock(), next_attempt_at=None)
        self._log(deleted).info("task_deleted", reason=action.reason)
        await self._event("delete", deleted, reason=action.reason)
        self._on_outcome("delete", "ok")

    async def _delete_duplicate(self, action: Action, policy: Policy) -> None:
        task = action.task
        assert task is not None
        try:
            await self._platform.delete(task.task_id, action.record.group)
        except LiveError as error:
            if not _not_found(error):
                self._log(action.record).warning(
                    "duplicate_delete_failed", duplicate=task.task_id, **_error_fields(error)
                )
                return
        self._obs.gone(task.title, task.task_id)
        self._log(action.record).warning("duplicate_deleted", duplicate=task.task_id)
        await self._event("delete_duplicate", action.record, duplicate=task.task_id)


def _from_segment(record: SegmentRecord, segment: Segment) -> SegmentRecord:
    """The record with the segment's current window and identity fields."""
    return dataclasses.replace(
        record,
        start=segment.start,
        end=segment.end,
        title=segment.title,
        group=segment.group,
        index=segment.index,
        occurrence=segment.occurrence,
    )
