"""Reconcile decisions: desired segments vs. what the store remembers and the platform shows -> actions.

This module is the pure heart of relayd. :func:`decide` takes one schedule's planned segments, its records from
the store, a view of the platform's tasks and ``now``, and returns the actions that bring the platform in line
plus the next instant the schedule needs attention. It performs no I/O and never reads the clock; the executor
(``relayd.executor``) performs the actions and writes their outcomes back to the store.

Level-triggered: every call looks at the whole picture, so running it twice, late, or after a crash gives the
same answer. A lost timer or callback only delays work.

Why "confirm" exists: failure signals (a failure callback, a task seen disabled in an old listing, a task absent
from a listing) may be stale. Before relayd restarts or re-creates anything it asks for a fresh look at that one
task (``CONFIRM``), then decides again with the fresh observation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from relayd.backoff import backoff_delay
from relayd.ids import SegmentKey, TaskId
from relayd.schedules.model import Segment
from relayd.store import SegmentRecord, SegmentState
from relayd.volc.models import TaskStatus

_LIVE_STATES = frozenset({SegmentState.SCHEDULED, SegmentState.RUNNING, SegmentState.RETRYING})


class ActionKind(StrEnum):
    SAVE = "save"  # store-only change (state, timers); no platform call
    CREATE = "create"  # write the CREATING intent, then CreatePullToPushTask
    ADOPT = "adopt"  # a task with our Title exists: take its id (after a crash between Create and the record)
    UPDATE = "update"  # UpdatePullToPushTask with the new spec
    CONTINUE = "continue"  # ContinuePullToPushTask: re-enable a disabled task
    RELAUNCH = "relaunch"  # RelaunchPullToPushTask: restart a failing active task
    DELETE = "delete"  # DeletePullToPushTask, then mark the record deleted
    DELETE_DUPLICATE = "delete_duplicate"  # a second task with the same Title: delete it, keep the record's
    CONFIRM = "confirm"  # list this Title afresh before deciding on a failure signal


@dataclass(frozen=True, slots=True)
class ObservedTask:
    """One platform task as last seen in a listing."""

    task_id: TaskId
    title: str
    status: TaskStatus
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PlatformView:
    """What relayd knows about the platform's tasks.

    ``listed_at`` is when the last complete listing started: a task absent from it, whose record was last
    written before then, is probably missing. ``fresh`` holds Titles listed in this very round: for those, the
    observation (or its absence) is authoritative.
    """

    tasks: Mapping[str, tuple[ObservedTask, ...]] = field(default_factory=dict)
    fresh: frozenset[str] = frozenset()
    listed_at: float | None = None

    def first(self, title: str, task_id: TaskId | None = None) -> ObservedTask | None:
        seen = self.tasks.get(title, ())
        for task in seen:
            if task.task_id == task_id:
                return task
        return seen[0] if seen and task_id is None else None


@dataclass(frozen=True, slots=True)
class Policy:
    prepare_ahead: float = 3600.0
    retention: float = 3600.0
    max_attempts: int = 8
    backoff_base: float = 5.0
    backoff_factor: float = 2.0
    backoff_cap: float = 600.0
    stable_after: float = 600.0
    create_retry_base: float = 5.0
    create_retry_cap: float = 120.0


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    record: SegmentRecord  # for SAVE: the record to store; otherwise the record the action starts from
    segment: Segment | None = None
    task: ObservedTask | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    wake_at: float | None  # next instant this schedule needs a look (None: nothing scheduled)


@dataclass(frozen=True, slots=True)
class _Ctx:
    now: float
    policy: Policy
    view: PlatformView
    rand: float


def new_record(segment: Segment, now: float) -> SegmentRecord:
    """A PENDING record for a planned segment that has none yet."""
    return SegmentRecord(
        key=segment.key,
        schedule_id=segment.schedule_id,
        index=segment.index,
        occurrence=segment.occurrence,
        start=segment.start,
        end=segment.end,
        title=segment.title,
        group=segment.group,
        spec_hash=segment.spec_hash,
        body={},
        created_at=now,
        updated_at=now,
    )


def timely_state(record: SegmentRecord, now: float) -> SegmentState:
    return SegmentState.RUNNING if record.start <= now < record.end else SegmentState.SCHEDULED


def _save(record: SegmentRecord, ctx: _Ctx, reason: str, **changes: object) -> Action:
    updated = dataclasses.replace(record, updated_at=ctx.now, **changes)  # type: ignore[arg-type]
    return Action(ActionKind.SAVE, updated, reason=reason)


def _min_time(*instants: float | None) -> float | None:
    present = [t for t in instants if t is not None]
    return min(present) if present else None


@dataclass(frozen=True, slots=True)
class _Step:
    actions: tuple[Action, ...] = ()
    wake_at: float | None = None


def _one(action: Action, wake_at: float | None = None) -> _Step:
    return _Step((action,), wake_at)


# --- per segment --------------------------------------------------------------------------------------------


def decide_segment(segment: Segment | None, record: SegmentRecord | None, ctx: _Ctx) -> _Step:
    """What to do for one segment key. ``segment`` is None when the plan no longer wants it."""
    is_new = record is None
    if record is None and segment is not None:
        record = new_record(segment, ctx.now)
    if record is None or record.state == SegmentState.DELETED:
        return _Step()
    if record.state in (SegmentState.ENDED, SegmentState.REMOVING) or record.end <= ctx.now:
        return _finish(record, ctx)
    if segment is None:
        return _remove(record, ctx)
    if record.state == SegmentState.FAILED:
        return _failed(segment, record, ctx)
    if record.task_id is None:
        return _ensure_created(segment, record, ctx, remember=is_new)
    return _maintain(segment, record, ctx)


def _finish(record: SegmentRecord, ctx: _Ctx) -> _Step:
    """Window over (or removal under way): delete the task after retention, then keep only history."""
    if record.state == SegmentState.REMOVING:
        return _remove(record, ctx)
    if record.task_id is None and record.state != SegmentState.CREATING:
        return _one(_save(record, ctx, "ended_without_task", state=SegmentState.DELETED, deleted_at=ctx.now))
    if record.state != SegmentState.ENDED:
        return _one(
            _save(record, ctx, "segment_ended", state=SegmentState.ENDED, next_attempt_at=None),
            record.end + ctx.policy.retention,
        )
    due = record.end + ctx.policy.retention
    if ctx.now < due:
        return _Step(wake_at=due)
    return _delete_or_confirm(record, ctx, "retention_over")


def _remove(record: SegmentRecord, ctx: _Ctx) -> _Step:
    """No longer planned: stop and delete what we own; a never-created segment just becomes history."""
    if record.task_id is None and record.state not in (SegmentState.CREATING, SegmentState.REMOVING):
        return _one(_save(record, ctx, "unplanned", state=SegmentState.DELETED, deleted_at=ctx.now))
    if record.state != SegmentState.REMOVING:
        removing = dataclasses.replace(record, state=SegmentState.REMOVING, updated_at=ctx.now)
        return _Step((Action(ActionKind.SAVE, removing, reason="unplanned"), *_delete_actions(removing, ctx)))
    return _delete_or_confirm(record, ctx, "unplanned")


def _delete_actions(record: SegmentRecord, ctx: _Ctx) -> tuple[Action, ...]:
    return _delete_or_confirm(record, ctx, "unplanned").actions


def _delete_or_confirm(record: SegmentRecord, ctx: _Ctx, reason: str) -> _Step:
    if record.next_attempt_at is not None and ctx.now < record.next_attempt_at:
        return _Step(wake_at=record.next_attempt_at)  # a failed delete backs off
    if record.task_id is not None:
        return _one(Action(ActionKind.DELETE, record, reason=reason))
    # Intent was recorded but the Create's outcome is unknown: find the task by its Title first.
    task = ctx.view.first(record.title)
    if task is not None:
        adopted = dataclasses.replace(record, task_id=task.task_id)
        return _one(Action(ActionKind.DELETE, adopted, task=task, reason=reason))
    if record.title in ctx.view.fresh:
        return _one(_save(record, ctx, "nothing_to_delete", state=SegmentState.DELETED, deleted_at=ctx.now))
    return _one(Action(ActionKind.CONFIRM, record, reason="unknown_create_outcome"))


def _failed(segment: Segment, record: SegmentRecord, ctx: _Ctx) -> _Step:
    """Budget spent: wait for the window to end, unless the operator changed the schedule (a fresh start)."""
    if segment.spec_hash == record.spec_hash:
        return _Step(wake_at=record.end)
    fresh = dataclasses.replace(record, attempts=0, next_attempt_at=None, failure_seen_at=ctx.now)
    state = timely_state(record, ctx.now) if record.task_id else SegmentState.PENDING
    return _one(_save(fresh, ctx, "schedule_changed_after_failure", state=state))


def _ensure_created(segment: Segment, record: SegmentRecord, ctx: _Ctx, *, remember: bool = False) -> _Step:
    """Create the segment's task when it is due; until then keep a PENDING record (so status shows it)."""
    task = ctx.view.first(segment.title)
    if task is not None:
        return _one(Action(ActionKind.ADOPT, record, segment=segment, task=task, reason="title_match"))
    if record.state == SegmentState.CREATING and segment.title not in ctx.view.fresh:
        return _one(Action(ActionKind.CONFIRM, record, segment=segment, reason="unknown_create_outcome"))
    due = _min_time(segment.start - ctx.policy.prepare_ahead)
    assert due is not None
    if record.next_attempt_at is not None:
        due = max(due, record.next_attempt_at)
    if ctx.now < due:
        return _one(Action(ActionKind.SAVE, record, reason="planned"), due) if remember else _Step(wake_at=due)
    return _one(Action(ActionKind.CREATE, record, segment=segment, reason="prepare_ahead"))


def _failure_signal(record: SegmentRecord, ctx: _Ctx) -> str | None:
    task = ctx.view.first(record.title, record.task_id)
    if task is not None and task.status == TaskStatus.DISABLED:
        return "disabled"
    if task is None and _absent(record, ctx):
        return "missing"
    if record.failure_seen_at is not None:
        return "failing"
    return None


def _absent(record: SegmentRecord, ctx: _Ctx) -> bool:
    if record.title in ctx.view.fresh:
        return True
    listed_at = ctx.view.listed_at
    return listed_at is not None and record.updated_at < listed_at


def _maintain(segment: Segment, record: SegmentRecord, ctx: _Ctx) -> _Step:
    signal = _failure_signal(record, ctx)
    if signal is None:
        return _healthy(segment, record, ctx)
    if segment.spec_hash != record.spec_hash and signal != "missing":
        return _one(Action(ActionKind.UPDATE, record, segment=segment, reason="spec_changed"))
    return _restart(segment, record, signal, ctx)


def _restart(segment: Segment, record: SegmentRecord, signal: str, ctx: _Ctx) -> _Step:
    policy = ctx.policy
    if record.next_attempt_at is None:
        delay = backoff_delay(
            record.attempts + 1,
            base=policy.backoff_base,
            factor=policy.backoff_factor,
            cap=policy.backoff_cap,
            rand=ctx.rand,
        )
        due = ctx.now + delay
        seen = record.failure_seen_at if record.failure_seen_at is not None else ctx.now
        action = _save(record, ctx, signal, state=SegmentState.RETRYING, next_attempt_at=due, failure_seen_at=seen)
        return _one(action, due)
    if ctx.now < record.next_attempt_at:
        return _Step(wake_at=record.next_attempt_at)
    if record.attempts >= policy.max_attempts:
        reason = f"restart budget spent after {record.attempts} attempts ({signal})"
        return _one(_save(record, ctx, "budget_spent", state=SegmentState.FAILED, last_error=reason), record.end)
    if record.title not in ctx.view.fresh:
        return _one(Action(ActionKind.CONFIRM, record, segment=segment, reason=signal))
    task = ctx.view.first(record.title, record.task_id)
    kind = {"missing": ActionKind.CREATE, "disabled": ActionKind.CONTINUE}.get(signal, ActionKind.RELAUNCH)
    if kind == ActionKind.RELAUNCH and (task is None or task.status != TaskStatus.ACTIVE):
        # A failure reported for a task that is not relaying (not started yet, or just ended): nothing to relaunch.
        return _one(_save(record, ctx, "failure_not_actionable", failure_seen_at=None, next_attempt_at=None))
    return _one(Action(kind, record, segment=segment, task=task, reason=signal))


def _healthy(segment: Segment, record: SegmentRecord, ctx: _Ctx) -> _Step:
    if segment.spec_hash != record.spec_hash:
        if record.next_attempt_at is not None and ctx.now < record.next_attempt_at:
            return _Step(wake_at=record.next_attempt_at)  # a failed update backs off
        return _one(Action(ActionKind.UPDATE, record, segment=segment, reason="spec_changed"))
    changes: dict[str, object] = {}
    state = timely_state(record, ctx.now)
    if record.state != state:
        changes["state"] = state
    if record.next_attempt_at is not None:
        changes["next_attempt_at"] = None  # a confirmed-healthy task needs no pending retry
    stable_at = record.healthy_since + ctx.policy.stable_after if record.healthy_since is not None else None
    if record.attempts and stable_at is not None and ctx.now >= stable_at:
        changes["attempts"] = 0
    wake = _min_time(
        record.start if ctx.now < record.start else None,
        record.end,
        stable_at if record.attempts and stable_at is not None and ctx.now < stable_at else None,
    )
    if not changes:
        return _Step(wake_at=wake)
    return _one(_save(record, ctx, "refresh", **changes), wake)


# --- per schedule -------------------------------------------------------------------------------------------


def _duplicates(records: Iterable[SegmentRecord], view: PlatformView) -> list[Action]:
    """Two tasks carrying one segment's Title: keep the record's task (or the first seen), delete the rest."""
    actions = []
    for record in records:
        seen = view.tasks.get(record.title, ())
        if len(seen) < 2 or record.state == SegmentState.DELETED:
            continue
        keep = record.task_id or seen[0].task_id
        for task in seen:
            if task.task_id != keep:
                actions.append(Action(ActionKind.DELETE_DUPLICATE, record, task=task, reason="duplicate_title"))
    return actions


def decide(
    desired: Sequence[Segment],
    records: Sequence[SegmentRecord],
    view: PlatformView,
    *,
    now: float,
    policy: Policy,
    rand: float,
) -> Plan:
    """All actions for one schedule, in segment order, and when to look again."""
    ctx = _Ctx(now=now, policy=policy, view=view, rand=rand)
    by_key: dict[SegmentKey, SegmentRecord] = {r.key: r for r in records}
    planned: dict[SegmentKey, Segment] = {s.key: s for s in desired}
    keys = list(planned) + [k for k in by_key if k not in planned]
    actions: list[Action] = _duplicates(by_key.values(), view)
    wake: float | None = None
    remembered = any(r.state == SegmentState.PENDING and r.task_id is None for r in records)
    for key in keys:
        segment, record = planned.get(key), by_key.get(key)
        if remembered and record is None and segment is not None and _far_ahead(segment, ctx):
            wake = _min_time(wake, segment.start - policy.prepare_ahead)  # nothing to do or remember yet
            continue
        step = decide_segment(segment, record, ctx)
        if _is_planned_save(step):
            # One segment waiting to be created is remembered ahead (status shows it as "next"); the one after it
            # is remembered when that one is created. Remembering the whole horizon cost ~4 writes per schedule.
            if remembered:
                step = _Step(wake_at=step.wake_at)
            remembered = True
        actions.extend(step.actions)
        wake = _min_time(wake, step.wake_at)
    return Plan(tuple(actions), wake)


def _far_ahead(segment: Segment, ctx: _Ctx) -> bool:
    """Not due for creation yet and not already on the platform (the common case for most planned segments)."""
    return ctx.now < segment.start - ctx.policy.prepare_ahead and segment.title not in ctx.view.tasks


def _is_planned_save(step: _Step) -> bool:
    return len(step.actions) == 1 and step.actions[0].reason == "planned"


def create_body(segment: Segment, *, now: float, callback_url: str | None) -> dict[str, object]:
    """The full CreatePullToPushTask body for a segment.

    A segment created after its start (relayd was down, or a re-create after a loss) starts now: the platform
    is not documented to accept a StartTime in the past.
    """
    body: dict[str, object] = dict(segment.body)
    body["StartTime"] = max(segment.start, int(now))
    body["EndTime"] = segment.end
    body["Title"] = segment.title
    if segment.group:
        body["GroupName"] = segment.group
    if callback_url and segment.callbacks:
        body["CallbackURL"] = callback_url
    return body
