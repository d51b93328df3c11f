"""A relay whose source cannot be pulled (SrcAddr host in ``.invalid``) fails by itself, as the failure quirk says."""

from __future__ import annotations

import pytest

from relayd.emulator.tasks import UNROUTABLE_FAIL_S, FailMode, Status, Tasks

T0 = 1_800_000_000.0
UNROUTABLE = "rtmp://relayd-probe.invalid/live/source"


def fields(start: float, end: float, src: str = UNROUTABLE) -> dict[str, object]:
    return {"StartTime": int(start), "EndTime": int(end), "CallbackURL": "http://cb/x", "Title": "a", "SrcAddr": src}


@pytest.mark.parametrize(
    ("mode", "status", "failed", "kinds"),
    [
        (FailMode.DISABLE, Status.DISABLED, False, ["start", "fail"]),
        (FailMode.STAY, Status.ACTIVE, True, ["start", "fail"]),
        (FailMode.SILENT, Status.ACTIVE, True, ["start"]),
    ],
)
def test_unroutable_fails_after_it_starts(mode: FailMode, status: Status, failed: bool, kinds: list[str]) -> None:
    tasks = Tasks()
    tasks.unroutable_mode = mode
    tasks.create("t1", fields(T0 + 10, T0 + 100), "default", T0)
    task = tasks.get("t1")
    assert task is not None
    assert tasks.next_instant() == T0 + 10
    events = tasks.advance(T0 + 30)
    assert [e.event_type for e in events] == kinds
    assert [e.time for e in events] == [T0 + 10, T0 + 10 + UNROUTABLE_FAIL_S][: len(kinds)]
    assert (task.phase, task.failed) == (status, failed)
    assert task.intervals == [[T0 + 10, T0 + 10 + UNROUTABLE_FAIL_S]]


def test_unroutable_source_created_running_fails_and_fails_again_after_relaunch() -> None:
    tasks = Tasks()
    tasks.unroutable_mode = FailMode.STAY
    assert [e.event_type for e in tasks.create("t1", fields(T0 - 5, T0 + 100), "default", T0)] == ["start"]
    assert tasks.next_instant() == T0 + UNROUTABLE_FAIL_S
    assert [e.event_type for e in tasks.advance(T0 + 2)] == ["fail"]
    task = tasks.get("t1")
    assert task is not None
    assert [e.event_type for e in tasks.relaunch(task, T0 + 5)] == ["recover"]
    assert [e.event_type for e in tasks.advance(T0 + 10)] == ["fail"]
    assert task.intervals[-1] == [T0 + 5, T0 + 5 + UNROUTABLE_FAIL_S]


def test_a_pullable_source_never_fails_by_itself() -> None:
    tasks = Tasks()
    tasks.create("t1", fields(T0, T0 + 100, src="rtmp://src.example.com/live/a"), "default", T0)
    assert tasks.next_instant() == T0 + 100
    assert [e.event_type for e in tasks.advance(T0 + 50)] == []
    task = tasks.get("t1")
    assert task is not None and task.relaying


def test_stopped_before_the_failure_it_does_not_fail() -> None:
    tasks = Tasks()
    tasks.create("t1", fields(T0, T0 + 100), "default", T0)
    task = tasks.get("t1")
    assert task is not None
    tasks.stop(task, T0 + 0.5)
    assert tasks.advance(T0 + 50) == []
    assert task.phase is Status.DISABLED
