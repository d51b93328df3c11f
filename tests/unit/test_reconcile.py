"""The pure reconcile decisions, at chosen instants: no event loop, no sleeping, no I/O."""

from __future__ import annotations

import dataclasses

import pytest

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.platform import ObservedTask
from relayd.policy import Policy
from relayd.reconcile import (
    ActionKind,
    PlatformView,
    create_body,
    decide,
    new_record,
)
from relayd.schedules.model import Segment
from relayd.store import SegmentRecord, SegmentState
from relayd.volc.models import TaskStatus

SID = ScheduleId("news")
POLICY = Policy(
    prepare_ahead=600,
    retention=300,
    max_attempts=3,
    backoff_base=10,
    backoff_factor=2,
    backoff_cap=100,
    stable_after=60,
)
T0 = 1_800_000_000


def seg(index: int, start: int, end: int, spec: str = "v1") -> Segment:
    key = SegmentKey(f"news.{index}")
    return Segment(
        schedule_id=SID,
        key=key,
        index=index,
        occurrence=None,
        start=start,
        end=end,
        title=f"rdTITLE{index:013d}",
        group=None,
        body={"Type": 0, "SrcAddr": "rtmp://src/live/a", "DstAddr": "rtmp://dst/live/b"},
        spec_hash=spec,
        callbacks=True,
    )


def live(segment: Segment, *, task: str = "t1", **changes: object) -> SegmentRecord:
    record = dataclasses.replace(
        new_record(segment, T0 - 1000), task_id=TaskId(task), state=SegmentState.SCHEDULED, updated_at=T0 - 1000
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def observed(segment: Segment, status: TaskStatus, task: str = "t1") -> PlatformView:
    item = ObservedTask(TaskId(task), segment.title, status, segment.start, segment.end)
    return PlatformView(tasks={segment.title: (item,)})


def kinds(plan: object) -> list[ActionKind]:
    return [a.kind for a in plan.actions]  # type: ignore[attr-defined]


def run(desired: list[Segment], records: list[SegmentRecord], view: PlatformView, now: float, rand: float = 0.5):
    return decide(desired, records, view, now=now, policy=POLICY, rand=rand)


class TestCreation:
    def test_waits_until_prepare_ahead_then_creates(self) -> None:
        s = seg(0, T0 + 3600, T0 + 7200)
        early = run([s], [], PlatformView(), now=T0)
        assert kinds(early) == [ActionKind.SAVE] and early.wake_at == T0 + 3600 - 600
        pending = early.actions[0].record  # remembered as PENDING, so status can show the next segment
        assert pending.state == SegmentState.PENDING and pending.task_id is None
        again = run([s], [pending], PlatformView(), now=T0 + 1)
        assert again.actions == () and again.wake_at == T0 + 3600 - 600
        due = run([s], [pending], PlatformView(), now=T0 + 3000)
        assert kinds(due) == [ActionKind.CREATE]

    def test_only_the_next_segment_to_create_is_remembered_ahead(self) -> None:
        segments = [seg(i, T0 + 3600 * (i + 1), T0 + 3600 * (i + 2)) for i in range(3)]
        plan = run(segments, [], PlatformView(), now=T0)
        assert [a.record.key for a in plan.actions] == ["news.0"] and plan.wake_at == T0 + 3600 - 600
        remembered = plan.actions[0].record
        assert run(segments, [remembered], PlatformView(), now=T0 + 1).actions == ()
        created = dataclasses.replace(remembered, task_id=TaskId("t0"), state=SegmentState.SCHEDULED)
        later = run(segments, [created], observed(segments[0], TaskStatus.PENDING, "t0"), now=T0 + 2)
        assert [a.record.key for a in later.actions] == ["news.1"]

    def test_creates_at_once_when_already_due(self) -> None:
        s = seg(0, T0 - 60, T0 + 600)
        assert kinds(run([s], [], PlatformView(), now=T0)) == [ActionKind.CREATE]

    def test_adopts_a_task_with_our_title_instead_of_creating(self) -> None:
        s = seg(0, T0, T0 + 600)
        plan = run([s], [], observed(s, TaskStatus.ACTIVE, "found"), now=T0 + 1)
        assert kinds(plan) == [ActionKind.ADOPT] and plan.actions[0].task.task_id == "found"

    def test_unknown_create_outcome_is_confirmed_before_creating_again(self) -> None:
        s = seg(0, T0, T0 + 600)
        creating = dataclasses.replace(new_record(s, T0), state=SegmentState.CREATING)
        assert kinds(run([s], [creating], PlatformView(), now=T0 + 1)) == [ActionKind.CONFIRM]
        fresh_empty = PlatformView(fresh=frozenset({s.title}))
        assert kinds(run([s], [creating], fresh_empty, now=T0 + 1)) == [ActionKind.CREATE]

    def test_failed_create_backs_off(self) -> None:
        s = seg(0, T0, T0 + 600)
        pending = dataclasses.replace(new_record(s, T0), next_attempt_at=T0 + 30)
        plan = run([s], [pending], PlatformView(), now=T0 + 5)
        assert plan.actions == () and plan.wake_at == T0 + 30

    def test_create_body_carries_window_title_and_callback(self) -> None:
        s = seg(0, T0 + 100, T0 + 700)
        body = create_body(s, now=T0, callback_url="https://relay.example/v1/callbacks/k/m")
        assert body["StartTime"] == T0 + 100 and body["EndTime"] == T0 + 700
        assert body["Title"] == s.title and body["CallbackURL"].endswith("/k/m")
        late = create_body(s, now=T0 + 250, callback_url=None)
        assert late["StartTime"] == T0 + 250 and "CallbackURL" not in late


class TestSteadyState:
    def test_healthy_task_wakes_at_its_next_transition(self) -> None:
        s = seg(0, T0 + 100, T0 + 700)
        record = live(s)
        plan = run([s], [record], observed(s, TaskStatus.PENDING), now=T0)
        assert plan.actions == () and plan.wake_at == T0 + 100
        running = run([s], [record], observed(s, TaskStatus.ACTIVE), now=T0 + 150)
        assert kinds(running) == [ActionKind.SAVE]
        assert running.actions[0].record.state == SegmentState.RUNNING and running.wake_at == T0 + 700

    def test_spec_change_updates_the_task(self) -> None:
        s = seg(0, T0 + 100, T0 + 700, spec="v2")
        plan = run([s], [live(s, spec_hash="v1")], observed(s, TaskStatus.PENDING), now=T0)
        assert kinds(plan) == [ActionKind.UPDATE]

    def test_removed_segment_is_deleted(self) -> None:
        s = seg(0, T0 + 100, T0 + 700)
        plan = run([], [live(s)], observed(s, TaskStatus.PENDING), now=T0)
        assert kinds(plan) == [ActionKind.SAVE, ActionKind.DELETE]
        assert plan.actions[0].record.state == SegmentState.REMOVING

    def test_ended_task_is_deleted_after_retention(self) -> None:
        s = seg(0, T0 - 700, T0 - 100)
        ended = run([], [live(s, state=SegmentState.RUNNING)], observed(s, TaskStatus.ENDED), now=T0)
        assert kinds(ended) == [ActionKind.SAVE] and ended.actions[0].record.state == SegmentState.ENDED
        assert ended.wake_at == T0 - 100 + 300
        record = ended.actions[0].record
        assert run([], [record], PlatformView(), now=T0 + 100).actions == ()
        assert kinds(run([], [record], PlatformView(), now=T0 + 200)) == [ActionKind.DELETE]

    def test_duplicate_titles_keep_the_recorded_task(self) -> None:
        s = seg(0, T0, T0 + 600)
        a = ObservedTask(TaskId("t1"), s.title, TaskStatus.ACTIVE, s.start, s.end)
        b = ObservedTask(TaskId("t2"), s.title, TaskStatus.ACTIVE, s.start, s.end)
        plan = run([s], [live(s, state=SegmentState.RUNNING)], PlatformView(tasks={s.title: (a, b)}), now=T0 + 5)
        dup = [x for x in plan.actions if x.kind == ActionKind.DELETE_DUPLICATE]
        assert [x.task.task_id for x in dup] == ["t2"]


class TestRestart:
    def test_disabled_task_is_confirmed_then_continued_after_backoff(self) -> None:
        s = seg(0, T0 - 100, T0 + 600)
        record = live(s, state=SegmentState.RUNNING)
        first = run([s], [record], observed(s, TaskStatus.DISABLED), now=T0, rand=0.5)
        assert kinds(first) == [ActionKind.SAVE]
        retrying = first.actions[0].record
        assert retrying.state == SegmentState.RETRYING and retrying.next_attempt_at == T0 + 5  # 0.5 * base 10
        assert run([s], [retrying], observed(s, TaskStatus.DISABLED), now=T0 + 1).wake_at == T0 + 5
        assert kinds(run([s], [retrying], observed(s, TaskStatus.DISABLED), now=T0 + 6)) == [ActionKind.CONFIRM]
        fresh = dataclasses.replace(observed(s, TaskStatus.DISABLED), fresh=frozenset({s.title}))
        assert kinds(run([s], [retrying], fresh, now=T0 + 6)) == [ActionKind.CONTINUE]

    def test_failing_active_task_is_relaunched(self) -> None:
        s = seg(0, T0 - 100, T0 + 600)
        record = live(s, state=SegmentState.RETRYING, failure_seen_at=T0 - 10, next_attempt_at=T0 - 1)
        fresh = dataclasses.replace(observed(s, TaskStatus.ACTIVE), fresh=frozenset({s.title}))
        assert kinds(run([s], [record], fresh, now=T0)) == [ActionKind.RELAUNCH]

    def test_missing_task_is_recreated(self) -> None:
        s = seg(0, T0 - 100, T0 + 600)
        record = live(s, state=SegmentState.RETRYING, next_attempt_at=T0 - 1)
        view = PlatformView(fresh=frozenset({s.title}))
        assert kinds(run([s], [record], view, now=T0)) == [ActionKind.CREATE]

    def test_absence_from_an_older_listing_is_not_a_signal(self) -> None:
        s = seg(0, T0 - 100, T0 + 600)
        record = live(s, state=SegmentState.RUNNING, updated_at=T0)
        assert run([s], [record], PlatformView(listed_at=T0 - 50), now=T0 + 1).actions == ()
        assert kinds(run([s], [record], PlatformView(listed_at=T0 + 1), now=T0 + 2)) == [ActionKind.SAVE]

    def test_budget_spent_marks_failed(self) -> None:
        s = seg(0, T0 - 100, T0 + 600)
        record = live(s, state=SegmentState.RETRYING, attempts=3, failure_seen_at=T0 - 5, next_attempt_at=T0 - 1)
        plan = run([s], [record], observed(s, TaskStatus.ACTIVE), now=T0)
        assert kinds(plan) == [ActionKind.SAVE] and plan.actions[0].record.state == SegmentState.FAILED
        failed = plan.actions[0].record
        assert run([s], [failed], observed(s, TaskStatus.ACTIVE), now=T0 + 10).actions == ()

    @pytest.mark.parametrize(("attempts", "rand", "delay"), [(0, 0.99, 9.9), (1, 0.5, 10.0), (5, 0.5, 50.0)])
    def test_backoff_grows_with_full_jitter_up_to_the_cap(self, attempts: int, rand: float, delay: float) -> None:
        s = seg(0, T0 - 100, T0 + 600)
        record = live(s, state=SegmentState.RUNNING, attempts=attempts)
        plan = run([s], [record], observed(s, TaskStatus.DISABLED), now=T0, rand=rand)
        assert plan.actions[0].record.next_attempt_at == pytest.approx(T0 + delay)

    def test_stable_task_resets_its_attempts(self) -> None:
        s = seg(0, T0 - 100, T0 + 600)
        record = live(s, state=SegmentState.RUNNING, attempts=2, healthy_since=T0 - 30)
        early = run([s], [record], observed(s, TaskStatus.ACTIVE), now=T0)
        assert early.actions == () and early.wake_at == T0 + 30
        later = run([s], [record], observed(s, TaskStatus.ACTIVE), now=T0 + 31)
        assert later.actions[0].record.attempts == 0

    def test_editing_a_failed_schedule_gives_it_a_fresh_budget(self) -> None:
        s = seg(0, T0 - 100, T0 + 600, spec="v2")
        failed = live(s, state=SegmentState.FAILED, attempts=3, spec_hash="v1")
        plan = run([s], [failed], observed(s, TaskStatus.ACTIVE), now=T0)
        assert plan.actions[0].record.attempts == 0 and plan.actions[0].record.state == SegmentState.RUNNING


class TestNoTaskLeft:
    """A task carrying a segment's Title is deleted before the segment's record becomes history, whatever the record
    knew of it."""

    @staticmethod
    def deletes(segment: Segment, record: SegmentRecord, view: PlatformView, instants: list[float]) -> list[str]:
        """Decide at each instant as the engine would: store each SAVE, list a CONFIRM's Title afresh (the view
        already holds what the listing shows), carry each DELETE out; the task ids deleted, in order."""
        deleted: list[str] = []
        for now in instants:
            for _ in range(4):
                plan = run([], [record], view, now=now)
                for action in plan.actions:
                    if action.kind == ActionKind.SAVE:
                        record = action.record
                    elif action.kind == ActionKind.CONFIRM:
                        view = dataclasses.replace(view, fresh=view.fresh | {segment.title})
                    elif action.kind == ActionKind.DELETE:
                        deleted.append(str(action.task.task_id if action.task else action.record.task_id))
                        record = dataclasses.replace(action.record, state=SegmentState.DELETED)
                        view = dataclasses.replace(view, tasks={})
        return deleted

    def test_a_create_cut_short_by_a_kill_and_found_after_the_window_is_deleted(self) -> None:
        # A late create (2 s left of its window): the intent stored, the task made, the instance killed before the
        # record learnt the id, and the next instance up after the window's end.
        segment = seg(0, T0, T0 + 5)
        intent = dataclasses.replace(new_record(segment, T0 - 10), state=SegmentState.CREATING, updated_at=T0 + 3)
        task = ObservedTask(TaskId("t9"), segment.title, TaskStatus.ENDED, T0 + 3, T0 + 5)
        view = PlatformView(tasks={segment.title: (task,)}, listed_at=T0 + 6)
        instants = [T0 + 6, T0 + 5 + POLICY.retention + 1]
        assert self.deletes(segment, intent, view, instants) == ["t9"]
