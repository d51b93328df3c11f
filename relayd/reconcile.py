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
from relayd.outcomes import slow_retry_delay, timely_state
from relayd.platform import ObservedTask
from relayd.platform.facts import PlatformFacts, RelaunchFrom
from relayd.policy import Policy
from relayd.schedules.model import Segment
from relayd.store import SegmentRecord, SegmentState
from relayd.volc.models import TaskStatus


class ActionKind(StrEnum):
    SAVE = "save"  # store-only change (state, timers); no platform call
    CREATE = "create"  # write the CREATING intent, then CreatePullToPushTask
    ADOPT = "adopt"  # a task with our Title exists: take its id (after a crash between Create and the record)
    UPDATE = "update"  # UpdatePullToPushTask with the new spec
    CONTINUE = "continue"  # ContinuePullToPushTask: re-enable a disabled task
    RELAUNCH = "relaunch"  # RelaunchPullToPushTask: restart a failing active task
    STOP_CONTINUE = "stop_continue"  # Stop, then Continue: restart where Relaunch is refused on 生效中 (Q1)
    REPLACE = "replace"  # delete the running task, then create it afresh: a change for a task Update refuses (Q5)
    DELETE = "delete"  # DeletePullToPushTask, then mark the record deleted
    DELETE_DUPLICATE = "delete_duplicate"  # a second task with the same Title: delete it, keep the record's
    CONFIRM = "confirm"  # list this Title afresh before deciding on a failure signal


class FailureSignal(StrEnum):
    """Why relayd believes a task that should relay does not."""

    MISSING = "missing"  # absent from a listing newer than its record
    DISABLED = "disabled"  # listed as 停用
    FAILING = "failing"  # a failure callback (or another report) not yet cleared


class Reason(StrEnum):
    """Why an action was chosen: logged, recorded in events, and shown by ``plan --live``."""

    PLANNED = "planned"  # remember the next segment to create (status shows it)
    PREPARE_AHEAD = "prepare_ahead"
    TITLE_MATCH = "title_match"
    UNKNOWN_CREATE_OUTCOME = "unknown_create_outcome"
    SPEC_CHANGED = "spec_changed"
    REFRESH = "refresh"
    SEGMENT_ENDED = "segment_ended"
    ENDED_WITHOUT_TASK = "ended_without_task"
    RETENTION_OVER = "retention_over"
    UNPLANNED = "unplanned"
    NOTHING_TO_DELETE = "nothing_to_delete"
    DUPLICATE_TITLE = "duplicate_title"
    STRAY_TASK = "stray_task"
    BUDGET_SPENT = "budget_spent"
    SLOW_RETRY = "slow_retry"
    FAILURE_NOT_ACTIONABLE = "failure_not_actionable"
    SCHEDULE_CHANGED_AFTER_FAILURE = "schedule_changed_after_failure"
    MISSING = FailureSignal.MISSING.value
    DISABLED = FailureSignal.DISABLED.value
    FAILING = FailureSignal.FAILING.value


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
class Action:
    kind: ActionKind
    record: SegmentRecord  # for SAVE: the record to store; otherwise the record the action starts from
    segment: Segment | None = None
    task: ObservedTask | None = None
    reason: Reason = Reason.REFRESH
    handoff: bool = False
    """CREATE: the segment takes over from the previous one on its destination (its gap is measured)."""
    start_shift_s: int = 0
    """CREATE: start the task this much after the segment's start (tasks on one destination may not touch)."""
    before_next: bool = False
    """CREATE: the segment ends where a task already created for the next one starts (a late segment's create)."""
    end_shift_s: int = 0
    """CREATE: end the task this much before the segment's end, where the next segment's task already starts there
    and tasks on one destination may not touch."""


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    wake_at: float | None  # next instant this schedule needs a look (None: nothing scheduled)
    deferred: frozenset[SegmentKey] = frozenset()
    """Running segments whose change waits for the next segment (the platform refuses Update while 生效中)."""


NO_FACTS = PlatformFacts()
HANDOFF_SHIFT_S = 1
"""Where tasks on one destination may not even touch (Q10, ``exclusive``), the next one starts this much later."""


@dataclass(frozen=True, slots=True)
class _Ctx:
    now: float
    policy: Policy
    view: PlatformView
    rand: float
    nudged_at: float | None
    facts: PlatformFacts = NO_FACTS
    ends: frozenset[int] = frozenset()
    """Ends of this schedule's planned or recorded segments: a segment starting at one of them is a hand-off."""
    task_starts: frozenset[int] = frozenset()
    """StartTimes of the tasks this schedule's live records carry: a segment ending at one was created late, after
    the task of the segment that follows it."""
    replace_running: bool = False
    """Apply a change to a running task Update refuses at once, by replacing the task (else: next segment)."""


def new_record(segment: Segment, now: float) -> SegmentRecord:
    """A PENDING record for a planned segment that has none yet."""
    return SegmentRecord.from_segment(segment, now)


def _save(record: SegmentRecord, ctx: _Ctx, reason: Reason, **changes: object) -> Action:
    updated = dataclasses.replace(record, updated_at=ctx.now, **changes)  # type: ignore[arg-type]
    return Action(ActionKind.SAVE, updated, reason=reason)


def _min_time(*instants: float | None) -> float | None:
    present = [t for t in instants if t is not None]
    return min(present) if present else None


@dataclass(frozen=True, slots=True)
class _Step:
    actions: tuple[Action, ...] = ()
    wake_at: float | None = None
    deferred: bool = False


def _one(action: Action, wake_at: float | None = None) -> _Step:
    return _Step((action,), wake_at)


# --- per segment --------------------------------------------------------------------------------------------


def decide_segment(segment: Segment | None, record: SegmentRecord | None, ctx: _Ctx) -> _Step:
    """What to do for one segment key. ``segment`` is None when the plan no longer wants it."""
    if record is not None and record.state == SegmentState.DELETED and segment is not None:
        record = None  # planned again: history does not stand in for a record (a task with its Title is adopted)
    is_new = record is None
    if record is None and segment is not None:
        record = new_record(segment, ctx.now)
    if record is None or record.state == SegmentState.DELETED:
        return _stray(record, ctx)
    if record.state in (SegmentState.ENDED, SegmentState.REMOVING) or record.end <= ctx.now:
        return _finish(record, ctx)
    if segment is None:
        return _remove(record, ctx)
    if record.state == SegmentState.FAILED and not _has_unadopted_task(record, ctx):
        return _failed(segment, record, ctx)
    if record.task_id is None:
        return _ensure_created(segment, record, ctx, remember=is_new)
    return _maintain(segment, record, ctx)


def _has_unadopted_task(record: SegmentRecord, ctx: _Ctx) -> bool:
    """A failed create whose task exists after all (its answer was lost, or someone made it by hand): adopt it at
    once rather than at the next slow retry."""
    return record.task_id is None and ctx.view.first(record.title) is not None


def _finish(record: SegmentRecord, ctx: _Ctx) -> _Step:
    """Window over (or removal under way): delete the task after retention, then keep only history.

    A record without a task id becomes history at once only when no task with its Title is seen and no create may
    have acted: a CREATING record (an instance killed between Create and its record, an answer that did not say)
    keeps its state until the retention is over, then its Title is listed afresh and whatever carries it deleted."""
    if record.state == SegmentState.REMOVING:
        return _remove(record, ctx)
    record = _claim(record, ctx)
    if record.task_id is None and record.state != SegmentState.CREATING:
        return _one(_save(record, ctx, Reason.ENDED_WITHOUT_TASK, state=SegmentState.DELETED, deleted_at=ctx.now))
    if record.state != SegmentState.ENDED and record.task_id is not None:
        # The attempt count starts again: from now on it counts failed deletes.
        ended = _save(record, ctx, Reason.SEGMENT_ENDED, state=SegmentState.ENDED, next_attempt_at=None, attempts=0)
        return _one(ended, record.end + ctx.policy.retention)
    due = record.end + ctx.policy.retention
    if ctx.now < due:
        return _Step(wake_at=due)
    return _delete_or_confirm(record, ctx, Reason.RETENTION_OVER)


def _claim(record: SegmentRecord, ctx: _Ctx) -> SegmentRecord:
    """A record without a task id whose Title is on the platform all the same (a create whose answer was lost, an
    instance killed between Create and its record, a task made by hand): an ended or unplanned segment's record
    carries that task, so it is deleted like any other rather than left behind when the record becomes history."""
    if record.task_id is not None:
        return record
    task = ctx.view.first(record.title)
    return record if task is None else dataclasses.replace(record, task_id=task.task_id)


def _stray(record: SegmentRecord | None, ctx: _Ctx) -> _Step:
    """A record already history, and a task with its Title on the platform (made after the record was forgotten, or
    forgotten by a release that did not look): nothing plans the segment, so the record takes the task back — ended
    (deleted after the retention) or removing (deleted now) — and the usual delete, with its backoff, follows."""
    task = ctx.view.first(record.title) if record is not None else None
    if record is None or task is None:
        return _Step()
    state = SegmentState.ENDED if record.end <= ctx.now else SegmentState.REMOVING
    changes = {"state": state, "task_id": task.task_id, "deleted_at": None, "attempts": 0, "next_attempt_at": None}
    return _one(_save(record, ctx, Reason.STRAY_TASK, **changes, last_error=None, failure_seen_at=None))


def _remove(record: SegmentRecord, ctx: _Ctx) -> _Step:
    """No longer planned: stop and delete what we own; a never-created segment just becomes history."""
    record = _claim(record, ctx)
    if record.task_id is None and record.state not in (SegmentState.CREATING, SegmentState.REMOVING):
        return _one(_save(record, ctx, Reason.UNPLANNED, state=SegmentState.DELETED, deleted_at=ctx.now))
    if record.state != SegmentState.REMOVING:
        removing = dataclasses.replace(
            record, state=SegmentState.REMOVING, attempts=0, next_attempt_at=None, updated_at=ctx.now
        )
        step = _delete_or_confirm(removing, ctx, Reason.UNPLANNED)
        return _Step((Action(ActionKind.SAVE, removing, reason=Reason.UNPLANNED), *step.actions), step.wake_at)
    return _delete_or_confirm(record, ctx, Reason.UNPLANNED)


def _delete_or_confirm(record: SegmentRecord, ctx: _Ctx, reason: Reason) -> _Step:
    """Delete the task: after its backoff if a delete failed, and after a fresh look when the task may be gone
    already — a failed delete (whatever error code the platform used for "no such task"), or a create whose
    outcome is unknown. A record is only forgotten once a fresh listing shows no task with its Title."""
    if record.next_attempt_at is not None and ctx.now < record.next_attempt_at:
        return _Step(wake_at=record.next_attempt_at)
    looked = record.title in ctx.view.fresh
    if not looked and record.task_id is None:
        return _one(Action(ActionKind.CONFIRM, record, reason=Reason.UNKNOWN_CREATE_OUTCOME))
    if not looked and record.last_error is not None:
        return _one(Action(ActionKind.CONFIRM, record, reason=reason))
    task = ctx.view.first(record.title, record.task_id) or ctx.view.first(record.title)
    if task is None:
        if looked:
            return _one(_save(record, ctx, Reason.NOTHING_TO_DELETE, state=SegmentState.DELETED, deleted_at=ctx.now))
        return _one(Action(ActionKind.DELETE, record, reason=reason))
    target = record if task.task_id == record.task_id else dataclasses.replace(record, task_id=task.task_id)
    return _one(Action(ActionKind.DELETE, target, task=task, reason=reason))


def _failed(segment: Segment, record: SegmentRecord, ctx: _Ctx) -> _Step:
    """Budget spent, but never given up while the window is open: tried again every ``failed_retry_interval``,
    at once after a reload or a success of the same kind of call, and afresh when the operator edits the schedule."""
    if segment.spec_hash != record.spec_hash:
        fresh = dataclasses.replace(record, attempts=0, next_attempt_at=None, failure_seen_at=ctx.now)
        state = timely_state(record, ctx.now) if record.task_id else SegmentState.PENDING
        return _one(_save(fresh, ctx, Reason.SCHEDULE_CHANGED_AFTER_FAILURE, state=state))
    due = record.next_attempt_at
    if due is None:
        later = ctx.now + slow_retry_delay(ctx.policy, ctx.rand)
        return _one(_save(record, ctx, Reason.SLOW_RETRY, next_attempt_at=later), later)
    nudged = ctx.nudged_at is not None and record.updated_at < ctx.nudged_at
    if ctx.now < due and not nudged:
        return _Step(wake_at=due)
    now_due = dataclasses.replace(record, next_attempt_at=None)
    if record.task_id is None:
        return _ensure_created(segment, now_due, ctx)
    signal = _failure_signal(record, ctx)
    if signal is None:
        return _healthy(segment, now_due, ctx)
    return _act_on_failure(segment, now_due, signal, ctx)


def _ensure_created(segment: Segment, record: SegmentRecord, ctx: _Ctx, *, remember: bool = False) -> _Step:
    """Create the segment's task when it is due; until then keep a PENDING record (so status shows it)."""
    task = ctx.view.first(segment.title)
    if task is not None:
        return _one(Action(ActionKind.ADOPT, record, segment=segment, task=task, reason=Reason.TITLE_MATCH))
    if record.state == SegmentState.CREATING and segment.title not in ctx.view.fresh:
        return _one(Action(ActionKind.CONFIRM, record, segment=segment, reason=Reason.UNKNOWN_CREATE_OUTCOME))
    due = segment.start - ctx.policy.prepare_ahead
    if record.next_attempt_at is not None:
        due = max(due, record.next_attempt_at)
    if ctx.now < due:
        if remember:
            return _one(Action(ActionKind.SAVE, record, reason=Reason.PLANNED), due)
        return _Step(wake_at=due)
    action = _shaped(ActionKind.CREATE, record, segment, ctx, Reason.PREPARE_AHEAD)
    if _too_late_to_start(segment, ctx, action.end_shift_s):
        return _Step(wake_at=segment.end)
    return _one(action)


def _too_late_to_start(segment: Segment, ctx: _Ctx, end_shift_s: int = 0) -> bool:
    """Q9: where a past StartTime is refused, a late task starts ``PAST_START_LEAD_S`` ahead of now; a segment that
    ends before then has no window left to create (the client's rules would refuse StartTime >= EndTime, and that
    must not count as a failed attempt). It is left to end; the next segment takes over as planned."""
    return ctx.facts.past_start is False and int(ctx.now) + PAST_START_LEAD_S >= segment.end - end_shift_s


def _shaped(kind: ActionKind, record: SegmentRecord, segment: Segment, ctx: _Ctx, reason: Reason) -> Action:
    """A CREATE or UPDATE carrying the segment's window as the platform will accept it (see ``_touching_refused``).

    Normally the next task is the one that gives way (it starts a second later). A segment created late — after the
    task of the segment that follows it, which starts exactly at its end — gives way itself: it ends a second
    early."""
    handoff = segment.start in ctx.ends
    before_next = segment.end in ctx.task_starts
    refused = _touching_refused(ctx.facts)
    return Action(
        kind, record, segment=segment, reason=reason, handoff=handoff,
        start_shift_s=HANDOFF_SHIFT_S if handoff and refused else 0,
        before_next=before_next, end_shift_s=HANDOFF_SHIFT_S if before_next and refused else 0,
    )  # fmt: skip


def _touching_refused(facts: PlatformFacts) -> bool:
    """Q10: tasks on one destination may not overlap, and windows that merely touch count as overlapping (unless
    known otherwise). The next task is then created ahead as usual, starting a second after the boundary: a hand-off
    never waits for a call made at the boundary, and the gap is one second."""
    return bool(facts.destination_exclusive) and facts.destination_touching_ok is not True


def _failure_signal(record: SegmentRecord, ctx: _Ctx) -> FailureSignal | None:
    task = ctx.view.first(record.title, record.task_id)
    if task is not None and task.status == TaskStatus.DISABLED:
        return FailureSignal.DISABLED
    if task is None and _absent(record, ctx):
        return FailureSignal.MISSING
    if record.failure_seen_at is not None:
        return FailureSignal.FAILING
    return None


def _absent(record: SegmentRecord, ctx: _Ctx) -> bool:
    if record.title in ctx.view.fresh:
        return True
    listed_at = ctx.view.listed_at
    return listed_at is not None and record.updated_at < listed_at


def _maintain(segment: Segment, record: SegmentRecord, ctx: _Ctx) -> _Step:
    """A failing task whose schedule changed is updated first (the edit may be the cure) — but only while the last
    call did not fail: a refused update then gives way to the restart path, which confirms, backs off and restores
    the task; the change follows once it is healthy (with its own backoff). Updating again at every pass would be a
    hot loop that never restarts the task."""
    signal = _failure_signal(record, ctx)
    if signal is None:
        return _healthy(segment, record, ctx)
    changed = segment.spec_hash != record.spec_hash and signal != FailureSignal.MISSING
    if changed and record.last_error is None and _may_update(record, ctx):
        return _one(_shaped(ActionKind.UPDATE, record, segment, ctx, Reason.SPEC_CHANGED))
    return _restart(segment, record, signal, ctx)


def _may_update(record: SegmentRecord, ctx: _Ctx) -> bool:
    """Q5: a task that has started is updated in place only where the platform is not known to refuse it."""
    return ctx.facts.update_running is not False or ctx.now < record.start


def _change(segment: Segment, record: SegmentRecord, ctx: _Ctx) -> _Step:
    """The schedule changed under a task. Update it in place; where the platform refuses Update while 生效中,
    either replace the task now (the operator asked for immediate effect) or leave it running on its old spec until
    it ends — the next segment is created from the new one. A failed update is retried only after a fresh look (an
    unknown TaskId may come back as any error code: the listing tells whether the task is gone)."""
    if record.next_attempt_at is not None and ctx.now < record.next_attempt_at:
        return _Step(wake_at=record.next_attempt_at)  # a failed update backs off
    if record.last_error is not None and record.title not in ctx.view.fresh:
        return _one(Action(ActionKind.CONFIRM, record, segment=segment, reason=Reason.SPEC_CHANGED))
    if _may_update(record, ctx):
        return _one(_shaped(ActionKind.UPDATE, record, segment, ctx, Reason.SPEC_CHANGED))
    if ctx.replace_running:
        return _one(Action(ActionKind.REPLACE, record, segment=segment, reason=Reason.SPEC_CHANGED))
    return _Step(wake_at=record.end, deferred=True)


def _restart(segment: Segment, record: SegmentRecord, signal: FailureSignal, ctx: _Ctx) -> _Step:
    """Back off (full jitter), then confirm and act; a spent budget marks the segment failed (and slow-retried)."""
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
        reason = Reason(signal.value)
        action = _save(record, ctx, reason, state=SegmentState.RETRYING, next_attempt_at=due, failure_seen_at=seen)
        return _one(action, due)
    if ctx.now < record.next_attempt_at:
        return _Step(wake_at=record.next_attempt_at)
    if record.attempts >= policy.max_attempts:
        why = f"restart budget spent after {record.attempts} attempts ({signal.value})"
        later = ctx.now + slow_retry_delay(policy, ctx.rand)
        changes = {"state": SegmentState.FAILED, "last_error": why, "next_attempt_at": later}
        return _one(_save(record, ctx, Reason.BUDGET_SPENT, **changes), later)
    return _act_on_failure(segment, record, signal, ctx)


_ACTION_FOR = {FailureSignal.MISSING: ActionKind.CREATE, FailureSignal.DISABLED: ActionKind.CONTINUE}


def _act_on_failure(segment: Segment, record: SegmentRecord, signal: FailureSignal, ctx: _Ctx) -> _Step:
    """Confirm the signal with a fresh listing, then re-create, continue or relaunch."""
    if record.title not in ctx.view.fresh:
        return _one(Action(ActionKind.CONFIRM, record, segment=segment, reason=Reason(signal.value)))
    task = ctx.view.first(record.title, record.task_id)
    kind = _ACTION_FOR.get(signal, relaunch_kind(ctx.facts))
    if kind == ActionKind.CREATE and _too_late_to_start(segment, ctx):
        return _Step(wake_at=segment.end)
    if kind in (ActionKind.RELAUNCH, ActionKind.STOP_CONTINUE) and (task is None or task.status != TaskStatus.ACTIVE):
        # A failure reported for a task that is not relaying (not started yet, or just ended): nothing to relaunch.
        cleared = _save(record, ctx, Reason.FAILURE_NOT_ACTIONABLE, failure_seen_at=None, next_attempt_at=None)
        return _one(cleared)
    return _one(Action(kind, record, segment=segment, task=task, reason=Reason(signal.value)))


def relaunch_kind(facts: PlatformFacts) -> ActionKind:
    """Q1: restart a failing 生效中 task with Relaunch, or — where Relaunch is accepted only from 停用 — Stop it
    and Continue it (Continue is documented to enable a disabled task; it works in every answer)."""
    return ActionKind.STOP_CONTINUE if facts.relaunch_from == RelaunchFrom.DISABLED else ActionKind.RELAUNCH


def _healthy(segment: Segment, record: SegmentRecord, ctx: _Ctx) -> _Step:
    if segment.spec_hash != record.spec_hash:
        return _change(segment, record, ctx)
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
    return _one(_save(record, ctx, Reason.REFRESH, **changes), wake)


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
                actions.append(Action(ActionKind.DELETE_DUPLICATE, record, task=task, reason=Reason.DUPLICATE_TITLE))
    return actions


def decide(
    desired: Sequence[Segment],
    records: Sequence[SegmentRecord],
    view: PlatformView,
    *,
    now: float,
    policy: Policy,
    rand: float,
    nudged_at: float | None = None,
    facts: PlatformFacts = NO_FACTS,
    replace_running: bool = False,
) -> Plan:
    """All actions for one schedule, in segment order, and when to look again.

    ``nudged_at``: the last instant something happened that may have cured a failed segment's cause (a config
    reload, a successful call of the kind that failed): segments that failed before it are tried again at once.
    """
    ends = frozenset(s.end for s in desired) | {r.end for r in records if r.state != SegmentState.DELETED}
    ctx = _Ctx(now, policy, view, rand, nudged_at, facts, ends, _task_starts(records), replace_running)
    by_key: dict[SegmentKey, SegmentRecord] = {r.key: r for r in records}
    planned: dict[SegmentKey, Segment] = {s.key: s for s in desired}
    keys = list(planned) + [k for k in by_key if k not in planned]
    actions: list[Action] = _duplicates(by_key.values(), view)
    wake: float | None = None
    deferred: set[SegmentKey] = set()
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
        if step.deferred:
            deferred.add(key)
    return Plan(tuple(actions), wake, frozenset(deferred))


def _far_ahead(segment: Segment, ctx: _Ctx) -> bool:
    """Not due for creation yet and not already on the platform (the common case for most planned segments)."""
    return ctx.now < segment.start - ctx.policy.prepare_ahead and segment.title not in ctx.view.tasks


def _is_planned_save(step: _Step) -> bool:
    return len(step.actions) == 1 and step.actions[0].reason == Reason.PLANNED


PAST_START_LEAD_S = 3
"""Where a StartTime in the past is refused (Q9), a late task starts this far ahead of ``now`` (clock skew, latency)."""


def _task_starts(records: Iterable[SegmentRecord]) -> frozenset[int]:
    """The StartTime each live record's task was created with."""
    starts = (r.body.get("StartTime") for r in records if r.task_id is not None and r.state != SegmentState.DELETED)
    return frozenset(int(str(start)) for start in starts if start is not None)


def create_body(
    segment: Segment,
    *,
    now: float,
    callback_url: str | None,
    start_shift_s: int = 0,
    end_shift_s: int = 0,
    past_start_refused: bool = False,
) -> dict[str, object]:
    """The full CreatePullToPushTask body for a segment.

    A segment created after its start (relayd was down, or a re-create after a loss) starts now: the platform
    is not documented to accept a StartTime in the past, and where it is known to refuse one, a few seconds ahead.
    """
    body: dict[str, object] = dict(segment.body)
    earliest = int(now) + PAST_START_LEAD_S if past_start_refused else int(now)
    body["StartTime"] = max(segment.start + start_shift_s, earliest)
    body["EndTime"] = segment.end - end_shift_s
    body["Title"] = segment.title
    if segment.group:
        body["GroupName"] = segment.group
    if callback_url and segment.callbacks:
        body["CallbackURL"] = callback_url
    return body


@dataclass(frozen=True, slots=True)
class NextAction:
    """What the daemon will do next for a segment (e.g. "create", "retry", "delete") and when (unix seconds)."""

    action: str
    at: float


def next_action(record: SegmentRecord, policy: Policy, wake: float | None) -> NextAction | None:
    """The status API's "next" for a segment, by the same timing rules :func:`decide` applies (``wake`` is the
    schedule's next wake-up, for a segment that only waits to be looked at)."""
    if record.state == SegmentState.DELETED:
        return None
    if record.state == SegmentState.FAILED:
        return NextAction("retry", record.next_attempt_at) if record.next_attempt_at is not None else None
    if record.state == SegmentState.PENDING:
        return NextAction("create", max(record.start - policy.prepare_ahead, record.next_attempt_at or 0.0))
    if record.state == SegmentState.ENDED:
        return NextAction("delete", max(record.end + policy.retention, record.next_attempt_at or 0.0))
    if record.next_attempt_at is not None:
        return NextAction("retry", record.next_attempt_at)
    return NextAction("check", wake) if wake is not None else None
