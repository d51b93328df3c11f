"""The emulator's task state machine as pure code: statuses by clock, actions, intervals and events."""

from __future__ import annotations

import pytest

from relayd.emulator.tasks import FailPlan, Status, Tasks, WrongState

T0 = 1_800_000_000.0


def fields(start: float, end: float, **extra: object) -> dict[str, object]:
    return {"StartTime": int(start), "EndTime": int(end), "CallbackURL": "http://cb/x", "Title": "a", **extra}


def kinds(events) -> list[str]:
    return [e.event_type for e in events]


def make(tasks: Tasks, start: float, end: float, now: float = T0, task_id: str = "t1"):
    tasks.create(task_id, fields(start, end), "default", now)
    return tasks.get(task_id)


def test_pending_then_active_then_ended_at_exact_instants() -> None:
    tasks = Tasks()
    task = make(tasks, T0 + 10, T0 + 20)
    assert task.phase is Status.PENDING
    assert tasks.next_instant() == T0 + 10
    assert tasks.advance(T0 + 9.9) == []
    # One late look applies both transitions in order, each stamped with its own instant.
    events = tasks.advance(T0 + 25)
    assert [(e.event_type, e.time, e.status) for e in events] == [
        ("start", T0 + 10, Status.ACTIVE),
        ("end", T0 + 20, Status.ENDED),
    ]
    assert task.intervals == [[T0 + 10, T0 + 20]]
    assert tasks.next_instant() is None


def test_past_start_goes_straight_to_active_from_the_creation_instant() -> None:
    tasks = Tasks()
    events = tasks.create("t1", fields(T0 - 100, T0 + 100), "default", T0)
    assert kinds(events) == ["start"]
    assert tasks.get("t1").phase is Status.ACTIVE
    assert tasks.get("t1").intervals == [[T0, None]]


def test_chained_tasks_touching_windows_have_zero_gap() -> None:
    tasks = Tasks()
    make(tasks, T0 + 10, T0 + 20, task_id="a")
    make(tasks, T0 + 20, T0 + 30, task_id="b")
    tasks.advance(T0 + 31)
    assert tasks.get("a").intervals[0][1] == tasks.get("b").intervals[0][0] == T0 + 20


def test_stop_then_continue_by_clock() -> None:
    tasks = Tasks()
    task = make(tasks, T0, T0 + 100)
    assert kinds(tasks.stop(task, T0 + 10)) == ["stop"]
    assert task.phase is Status.DISABLED and task.intervals == [[T0, T0 + 10]]
    assert tasks.advance(T0 + 200) == []  # a disabled task stays 停用 past its end
    assert task.phase is Status.DISABLED
    with pytest.raises(WrongState, match="停用"):
        tasks.stop(task, T0 + 20)
    events = tasks.enable(task, T0 + 200)
    assert kinds(events) == ["continue"] and task.phase is Status.ENDED


def test_continue_inside_the_window_reopens_an_interval() -> None:
    tasks = Tasks()
    task = make(tasks, T0, T0 + 100)
    tasks.stop(task, T0 + 10)
    tasks.enable(task, T0 + 30)
    assert task.phase is Status.ACTIVE
    assert task.intervals == [[T0, T0 + 10], [T0 + 30, None]]


def test_wrong_state_calls_name_the_status() -> None:
    tasks = Tasks()
    task = make(tasks, T0 + 10, T0 + 20)
    with pytest.raises(WrongState, match="未开始"):
        tasks.enable(task, T0)
    with pytest.raises(WrongState, match="未开始"):
        tasks.relaunch(task, T0)
    tasks.advance(T0 + 30)
    with pytest.raises(WrongState, match="已结束"):
        tasks.update(task, fields(T0 + 40, T0 + 50), T0 + 30)


def test_fail_disable_then_continue_recovers_when_repeat_is_spent() -> None:
    tasks = Tasks()
    task = make(tasks, T0, T0 + 100)
    events = tasks.fail(task, FailPlan("disable", repeat=1), T0 + 5)
    assert [(e.event_type, e.status) for e in events] == [("fail", Status.DISABLED)]
    # The first Continue fails again right away (repeat=1): no relaying interval in between.
    assert kinds(tasks.enable(task, T0 + 6)) == ["continue", "fail"]
    assert task.intervals == [[T0, T0 + 5]]
    assert kinds(tasks.enable(task, T0 + 7)) == ["continue"]
    assert task.intervals == [[T0, T0 + 5], [T0 + 7, None]]


def test_fail_stay_keeps_status_and_relaunch_recovers() -> None:
    tasks = Tasks()
    task = make(tasks, T0, T0 + 100)
    tasks.fail(task, FailPlan("stay", repeat=0), T0 + 5)
    assert task.phase is Status.ACTIVE and task.failed and not task.relaying
    assert kinds(tasks.relaunch(task, T0 + 8)) == ["recover"]
    assert task.intervals == [[T0, T0 + 5], [T0 + 8, None]]
    assert kinds(tasks.relaunch(task, T0 + 9)) == ["relaunch"]  # a healthy relaunch keeps relaying
    assert task.intervals == [[T0, T0 + 5], [T0 + 8, None]]


def test_fail_stay_with_automatic_recovery() -> None:
    tasks = Tasks()
    task = make(tasks, T0, T0 + 100)
    tasks.fail(task, FailPlan("stay", recover_after_s=3), T0 + 5)
    assert tasks.next_instant() == T0 + 8
    assert [(e.event_type, e.time) for e in tasks.advance(T0 + 50)] == [("recover", T0 + 8)]
    assert task.intervals == [[T0, T0 + 5], [T0 + 8, None]]


def test_update_moves_an_active_task_back_to_pending_and_keeps_title() -> None:
    tasks = Tasks()
    task = make(tasks, T0, T0 + 100)
    events = tasks.update(task, fields(T0 + 50, T0 + 150, Title=""), T0 + 10)
    assert task.phase is Status.PENDING and task.title == "a"
    assert task.intervals == [[T0, T0 + 10]]
    assert kinds(events) == ["update"]
    assert [e.time for e in tasks.advance(T0 + 60)] == [T0 + 50]


def test_delete_closes_the_interval_and_keeps_history() -> None:
    tasks = Tasks()
    task = make(tasks, T0, T0 + 100)
    assert kinds(tasks.delete(task, T0 + 7)) == ["delete"]
    assert tasks.get("t1") is None and tasks.all == [task]
    assert task.intervals == [[T0, T0 + 7]] and task.deleted_at == T0 + 7
    assert tasks.advance(T0 + 200) == []


def test_event_ids_are_unique() -> None:
    tasks = Tasks()
    tasks.set_event_prefix("p")
    make(tasks, T0 + 1, T0 + 2)
    ids = [e.event_id for e in tasks.advance(T0 + 3)]
    assert len(set(ids)) == 2 and all(i.startswith("p-") for i in ids)


def test_advance_with_many_tasks_is_heap_driven() -> None:
    tasks = Tasks()
    for i in range(2000):
        make(tasks, T0 + 10 + i, T0 + 5000, task_id=f"t{i}")
    events = tasks.advance(T0 + 10 + 999.5)
    assert len(events) == 1000
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_relaunch_from_the_statuses_allowed() -> None:
    tasks = Tasks()
    task = make(tasks, T0 - 10, T0 + 100)
    tasks.stop(task, T0 + 1)
    with pytest.raises(WrongState, match="only 生效中 tasks can be relaunched"):
        tasks.relaunch(task, T0 + 2)
    events = tasks.relaunch(task, T0 + 3, allowed=(Status.DISABLED,))
    assert kinds(events) == ["relaunch"] and task.phase is Status.ACTIVE and not task.disabled
    assert task.intervals == [[T0, T0 + 1], [T0 + 3, None]]
    with pytest.raises(WrongState, match="only 停用 tasks can be relaunched"):
        tasks.relaunch(task, T0 + 4, allowed=(Status.DISABLED,))


def test_silent_failure_closes_the_interval_without_an_event() -> None:
    tasks = Tasks()
    task = make(tasks, T0 - 10, T0 + 100)
    assert tasks.fail(task, FailPlan("silent", repeat=0), T0 + 5) == []
    assert (task.phase, task.failed, task.relaying) == (Status.ACTIVE, True, False)
    assert kinds(tasks.relaunch(task, T0 + 6)) == ["recover"] and task.relaying


def test_tasks_are_indexed_by_destination_across_updates() -> None:
    tasks = Tasks()
    task = make(tasks, T0 + 10, T0 + 100)
    tasks.create("t2", fields(T0 + 10, T0 + 100, DstAddr="rtmp://H/live/b?x=1"), "default", T0)
    assert [t.task_id for t in tasks.on_destination("h/live/b")] == ["t2"]
    assert tasks.on_destination("none/None/None") == [task]  # no DstAddr: rtmp://Domain/App/Stream, all absent
    tasks.update(task, fields(T0 + 10, T0 + 100, DstAddr="rtmps://h/live/b"), T0 + 1)
    assert [t.task_id for t in tasks.on_destination("h/live/b")] == ["t2", "t1"]
    assert tasks.on_destination("none/None/None") == []
