"""The thin shell around the reconcile decisions: performs one action, records its outcome.

Rules this module keeps:
- Intent before effect: a Create is preceded by a durable CREATING record carrying the exact body, so a crash
  between the two is repaired by adopting the task by its Title instead of creating a duplicate.
- It chooses nothing: each platform error is classified once (:func:`relayd.outcomes.outcome_of`) and the record
  to store comes from the pure functions of :mod:`relayd.outcomes`, given ``now`` and the pass's random draw.
- Every outcome is written to the store (task id, state, attempts, last error with its RequestId) and to the
  event history, and logged with schedule id, segment key, task id and request id. Only the store's own write
  errors propagate (the reconcile pass then stops and the periodic resync retries).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from relayd.ids import SegmentKey, TaskId
from relayd.knowledge import Knowledge
from relayd.observations import Observations
from relayd.outcomes import (
    OK,
    Outcome,
    OutcomeKind,
    after_create,
    after_delete,
    after_restart,
    after_update,
    attempts_after_update,
    create_is_urgent,
    outcome_of,
    timely_state,
)
from relayd.platform import ObservedTask, Platform, status_at
from relayd.platform.facts import RelaunchFrom
from relayd.policy import Policy
from relayd.reconcile import Action, ActionKind, Reason, create_body
from relayd.refusals import Refusal
from relayd.store import Event, SegmentRecord, SegmentState, StateStore
from relayd.volc.errors import LiveError

log = structlog.get_logger("relayd.executor")

CallbackUrl = Callable[[SegmentKey], str | None]
OutcomeSink = Callable[[str, Outcome], None]
"""Told every platform call's outcome by label — create, recreate, update, continue, relaunch, delete — and each
spent budget (``restart`` with code ``budget_spent``): metrics, and the engine's last success of each kind."""
BUDGET_SPENT = Outcome(OutcomeKind.TERMINAL, "budget_spent")
HandoffSink = Callable[[SegmentRecord, float], None]
"""Told each hand-off's gap: seconds the destination had no task between one segment's end and the next's start."""


@dataclass(frozen=True, slots=True)
class Turn:
    """What one batch of actions is performed under: the schedule's policy, ``now`` and the pass's random draw."""

    policy: Policy
    rand: float


class Executor:
    def __init__(
        self,
        *,
        store: StateStore,
        platform: Platform,
        observations: Observations,
        callback_url: CallbackUrl,
        clock: Callable[[], float],
        on_outcome: OutcomeSink,
        knowledge: Knowledge | None = None,
        on_handoff: HandoffSink | None = None,
    ) -> None:
        self._store = store
        self._platform = platform
        self._obs = observations
        self._callback_url = callback_url
        self._clock = clock
        self._on_outcome = on_outcome
        self._knowledge = knowledge or Knowledge()
        self._on_handoff = on_handoff or (lambda record, gap: None)

    async def perform_all(self, actions: Sequence[Action], turn: Turn) -> None:
        """Perform ``actions`` in order; each run of consecutive SAVEs is written in one store operation."""
        for is_save, run in itertools.groupby(actions, key=lambda a: a.kind == ActionKind.SAVE):
            if is_save:
                await self._save_many(list(run))
                continue
            for action in run:
                await self.perform(action, turn)

    async def perform(self, action: Action, turn: Turn) -> None:
        handler = {
            ActionKind.SAVE: self._save,
            ActionKind.CREATE: self._create,
            ActionKind.ADOPT: self._adopt,
            ActionKind.UPDATE: self._update,
            ActionKind.CONTINUE: self._restart,
            ActionKind.RELAUNCH: self._restart,
            ActionKind.STOP_CONTINUE: self._restart,
            ActionKind.REPLACE: self._replace,
            ActionKind.DELETE: self._delete,
            ActionKind.DELETE_DUPLICATE: self._delete_duplicate,
        }[action.kind]
        await handler(action, turn)

    # --- helpers --------------------------------------------------------------------------------------------

    async def _put(self, record: SegmentRecord) -> SegmentRecord:
        updated = dataclasses.replace(record, updated_at=self._clock())
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

    def _saw(self, record: SegmentRecord, task_id: TaskId, start: int) -> None:
        status = status_at(start, record.end, self._clock())
        self._obs.saw(ObservedTask(task_id, record.title, status, start, record.end))

    async def _call(self, kind: str, call: Any) -> tuple[Outcome, Any]:
        """Await a platform call; its outcome, classified once, and its result."""
        try:
            result = await call
        except LiveError as error:
            outcome = outcome_of(error)
            self._on_outcome(kind, outcome)
            return outcome, None
        self._on_outcome(kind, OK)
        return OK, result

    # --- actions --------------------------------------------------------------------------------------------

    async def _save(self, action: Action, turn: Turn) -> None:
        await self._save_many([action])

    async def _save_many(self, actions: list[Action]) -> None:
        """Several SAVEs in one store write: a first pass of 10,000 schedules saves ~40,000 planned segments, and
        one commit round trip each made the store the start-up's bottleneck."""
        befores = [self._store.segment(a.record.key) for a in actions]
        # Not awaited: no platform write depends on a SAVE. The writer commits in order, so the next awaited write
        # (a create's intent) is durable only after this one; a failure is logged and undone in the mirror, and
        # the periodic resync decides again.
        self._store.put_many_nowait(a.record for a in actions)
        for action, before in zip(actions, befores, strict=True):
            await self._saved(action, before)

    async def _saved(self, action: Action, before: SegmentRecord | None) -> None:
        record = action.record
        if record.state == SegmentState.FAILED and (before is None or before.state != SegmentState.FAILED):
            self._log(record).error("segment_failed", reason=record.last_error, next_attempt_at=record.next_attempt_at)
            await self._event("failed", record, reason=record.last_error)
            self._on_outcome("restart", BUDGET_SPENT)
        elif before is None and record.state == SegmentState.PENDING:
            # A segment merely planned ahead is not news (a first pass plans ~4 per schedule); its creation is.
            log.debug("segment_planned", schedule_id=record.schedule_id, segment=record.key)
        elif before is None or before.state != record.state:
            self._log(record).info("segment_state", state=record.state.value, reason=action.reason.value)

    async def _create(self, action: Action, turn: Turn) -> None:
        segment = action.segment
        assert segment is not None
        restart = action.record.task_id is not None or action.reason == Reason.MISSING
        body = create_body(
            segment,
            now=self._clock(),
            callback_url=self._callback_url(segment.key),
            start_shift_s=action.start_shift_s,
            end_shift_s=action.end_shift_s,
            past_start_refused=self._knowledge.facts.past_start is False,
        )
        intent = action.record.with_segment(
            segment, state=SegmentState.CREATING, task_id=None, body=body, spec_hash=segment.spec_hash
        )
        await self._store.put(intent)  # the store stamps updated_at
        outcome, task_id = await self._call("recreate" if restart else "create", self._platform.create(body))
        now = self._clock()
        learnt = self._learn_from_create(action, outcome)
        record = after_create(
            intent, outcome, task_id, restart=restart, now=now, policy=turn.policy, rand=turn.rand, learnt=learnt
        )
        if outcome.kind != OutcomeKind.OK:
            await self._store.put(record)
            await self._create_failed(record, outcome, turn)
            return
        start = int(str(body["StartTime"]))
        gap = max(float(start), now) - segment.start if action.handoff else None
        # The record and its event go into the next commit, not awaited: the intent (CREATING, awaited above) is
        # what makes a crash from here on safe — a restart lists the segment's Title and adopts the task — so
        # waiting for this commit would only hold the pass (at start-up, one store round trip per create).
        self._event_nowait("create", record, start=start, end=body["EndTime"], restart=restart, gap_s=gap)
        self._store.put_many_nowait((record,))
        self._saw(record, task_id, start)
        self._log(record).info(
            "task_created", task_id=task_id, start=start, end=body["EndTime"], restart=restart, handoff_gap_s=gap
        )
        if gap is not None:
            self._on_handoff(record, gap)

    def _learn_from_create(self, action: Action, outcome: Outcome) -> bool:
        """Q10 and Q9 from a refused Create or Update; True when the answer is news (the next try will differ)."""
        evidence = f"{outcome.code}: {outcome.error}"
        if outcome.refusal == Refusal.DESTINATION_BUSY:
            news = self._knowledge.learn("destination_exclusive", True, evidence)
            if (action.handoff and action.start_shift_s == 0) or (action.before_next and action.end_shift_s == 0):
                # Our window only touched the previous segment's (or, created late, the next one's task): touching
                # windows count as overlapping.
                news = self._knowledge.learn("destination_touching_ok", False, evidence) or news
            return news
        if outcome.refusal == Refusal.PAST_START:
            return self._knowledge.learn("past_start", False, evidence)
        return False

    async def _create_failed(self, record: SegmentRecord, outcome: Outcome, turn: Turn) -> None:
        now = self._clock()
        urgent = create_is_urgent(record, outcome, now=now, policy=turn.policy)
        getattr(self._log(record), "error" if urgent else "warning")(
            "task_create_failed",
            outcome=outcome.kind.value,
            state=record.state.value,
            handoff_in_s=round(record.start - now, 1),
            next_attempt_at=record.next_attempt_at,
            **outcome.fields(),
        )
        await self._event("create_failed", record, outcome=outcome.kind.value, **outcome.fields())

    async def _adopt(self, action: Action, turn: Turn) -> None:
        task, segment = action.task, action.segment
        assert task is not None and segment is not None
        # Adopting after a crash mid-create: the intent's body and spec hash are what the task was created from.
        # Without an intent (store lost), force an Update so the task carries the current spec.
        spec_hash = action.record.spec_hash if action.record.state == SegmentState.CREATING else "adopted"
        adopted = dataclasses.replace(
            action.record.with_segment(segment),
            task_id=task.task_id,
            state=timely_state(action.record, self._clock()),
            spec_hash=spec_hash,
            next_attempt_at=None,
        )
        record = await self._put(adopted)
        self._log(record).info("task_adopted", task_id=task.task_id)
        await self._event("adopt", record)

    async def _update(self, action: Action, turn: Turn) -> None:
        segment, record = action.segment, action.record
        assert segment is not None and record.task_id is not None
        now = self._clock()
        body = create_body(
            segment,
            now=now,
            callback_url=self._callback_url(segment.key),
            start_shift_s=action.start_shift_s,
            end_shift_s=action.end_shift_s,
            past_start_refused=self._knowledge.facts.past_start is False,
        )
        if segment.start <= now and record.start <= now:
            body["StartTime"] = record.body.get("StartTime", body["StartTime"])  # running: keep its start
        outcome, _ = await self._call("update", self._platform.update({**body, "TaskId": record.task_id}))
        if outcome.kind != OutcomeKind.OK:
            learnt = self._learn_from_create(action, outcome)  # an Update meets the same rules of the window
            failed = after_update(record, outcome, now=self._clock(), policy=turn.policy, rand=turn.rand, learnt=learnt)
            await self._put(failed)
            if outcome.refusal == Refusal.UPDATE_RUNNING:
                self._knowledge.learn("update_running", False, f"{outcome.code}: {outcome.error}")
                return  # the next pass decides: replace now, or apply from the next segment (and says which)
            self._log(record).warning("task_update_failed", outcome=outcome.kind.value, **outcome.fields())
            return
        updated = dataclasses.replace(
            record.with_segment(segment),
            spec_hash=segment.spec_hash,
            body=body,
            attempts=attempts_after_update(record),
            next_attempt_at=None,
            last_error=None,
            last_request_id=None,
        )
        updated = await self._put(updated)
        self._saw(updated, record.task_id, int(str(body["StartTime"])))
        self._log(updated).info("task_updated", start=body["StartTime"], end=body["EndTime"])
        await self._event("update", updated)

    async def _restart(self, action: Action, turn: Turn) -> None:
        record = action.record
        assert record.task_id is not None
        kind = action.kind.value
        outcome = await self._restart_call(action.kind, record.task_id, record.group)
        if action.kind == ActionKind.RELAUNCH and outcome.refusal == Refusal.WRONG_STATUS:
            # Q1: Relaunch refused on a 生效中 task: it wants 停用. One attempt spent; Stop + Continue from now on.
            self._knowledge.learn("relaunch_from", RelaunchFrom.DISABLED, f"{outcome.code}: {outcome.error}")
        now = self._clock()
        after = await self._put(after_restart(record, outcome, now=now))
        if outcome.kind != OutcomeKind.OK:
            self._log(record).warning("task_restart_failed", action=kind, attempt=after.attempts, **outcome.fields())
            await self._event("restart_failed", after, action=kind, **outcome.fields())
            return
        status = status_at(record.start, record.end, now)
        self._obs.saw(ObservedTask(record.task_id, record.title, status, record.start, record.end))
        self._log(after).info("task_restarted", action=kind, attempt=after.attempts, reason=action.reason.value)
        await self._event("restart", after, action=kind, attempt=after.attempts, reason=action.reason.value)

    async def _restart_call(self, kind: ActionKind, task_id: TaskId, group: str | None) -> Outcome:
        if kind == ActionKind.STOP_CONTINUE:
            outcome, _ = await self._call("stop", self._platform.stop(task_id, group))
            if outcome.kind != OutcomeKind.OK:
                return outcome
            return (await self._call("continue", self._platform.resume(task_id, group)))[0]
        call = self._platform.resume if kind == ActionKind.CONTINUE else self._platform.relaunch
        return (await self._call(kind.value, call(task_id, group)))[0]

    async def _replace(self, action: Action, turn: Turn) -> None:
        """Q5 with immediate effect: the running task cannot be updated, so delete it and create the segment's task
        afresh from the new spec (delete first: where tasks may not share a destination the new one would be
        refused). The record goes through CREATING as any create does, so a crash in between is repaired."""
        record, segment = action.record, action.segment
        assert record.task_id is not None and segment is not None
        outcome, _ = await self._call("delete", self._platform.delete(record.task_id, record.group))
        if outcome.kind not in (OutcomeKind.OK, OutcomeKind.NOT_FOUND):
            self._log(record).warning("task_replace_failed", **outcome.fields())
            return
        self._obs.gone(record.title, record.task_id)
        self._log(record).info("task_replaced", applies="now", note="the platform refuses Update while running")
        await self._event("replace", record)
        fresh = dataclasses.replace(record, task_id=None)
        await self._create(Action(ActionKind.CREATE, fresh, segment=segment, reason=Reason.SPEC_CHANGED), turn)

    async def _delete(self, action: Action, turn: Turn) -> None:
        record = action.record
        assert record.task_id is not None
        outcome, _ = await self._call("delete", self._platform.delete(record.task_id, record.group))
        after = after_delete(record, outcome, now=self._clock(), policy=turn.policy, rand=turn.rand)
        after = await self._put(after)
        if after.state != SegmentState.DELETED:
            self._log(record).warning("task_delete_failed", next_attempt_at=after.next_attempt_at, **outcome.fields())
            return
        self._obs.gone(record.title, record.task_id)
        self._log(after).info("task_deleted", reason=action.reason.value)
        await self._event("delete", after, reason=action.reason.value)

    async def _delete_duplicate(self, action: Action, turn: Turn) -> None:
        task = action.task
        assert task is not None
        outcome, _ = await self._call("delete", self._platform.delete(task.task_id, action.record.group))
        if outcome.kind not in (OutcomeKind.OK, OutcomeKind.NOT_FOUND):
            self._log(action.record).warning("duplicate_delete_failed", duplicate=task.task_id, **outcome.fields())
            return
        self._obs.gone(task.title, task.task_id)
        self._log(action.record).warning("duplicate_deleted", duplicate=task.task_id)
        await self._event("delete_duplicate", action.record, duplicate=task.task_id)
