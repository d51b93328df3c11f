"""Pure status shaping and readiness decisions."""

from __future__ import annotations

import dataclasses

import pytest

from relayd.ids import ScheduleId, SegmentKey
from relayd.store import SegmentRecord, SegmentState
from relayd.web.api import position, rfc3339, schedule_state
from relayd.web.app import parse_listen
from relayd.web.health import readiness
from relayd.web.views import ScheduleInfo


def seg(index: int, start: int, end: int, state: SegmentState = SegmentState.SCHEDULED) -> SegmentRecord:
    return SegmentRecord(
        key=SegmentKey(f"s-{index}"), schedule_id=ScheduleId("s"), index=index, occurrence=None, start=start,
        end=end, title="t", group=None, spec_hash="h", body={}, state=state,
    )  # fmt: skip


def test_position_touching_segments_at_the_boundary() -> None:
    segs = [seg(0, 0, 100), seg(1, 100, 200), seg(2, 200, 300)]
    at_boundary = position(segs, 100)
    assert (at_boundary.current.index, at_boundary.next.index) == (1, 2)  # type: ignore[union-attr]
    assert at_boundary.handoff_at == 200
    before = position(segs, -50)
    assert before.current is None and before.next.index == 0 and before.handoff_at == 0  # type: ignore[union-attr]
    last = position(segs, 250)
    assert last.current.index == 2 and last.next is None and last.handoff_at is None  # type: ignore[union-attr]


def test_position_ignores_removed_segments() -> None:
    segs = [seg(0, 0, 100, SegmentState.DELETED), seg(1, 50, 150, SegmentState.REMOVING)]
    assert position(segs, 60) == position([], 60)


def test_schedule_state() -> None:
    info = ScheduleInfo(ScheduleId("s"))
    running = position([seg(0, 0, 100, SegmentState.RUNNING)], 10)
    waiting = position([seg(0, 50, 100)], 10)
    nothing = position([], 10)
    assert schedule_state(info, running) == "running"
    assert schedule_state(dataclasses.replace(info, enabled=False), running) == "disabled"
    assert schedule_state(info, waiting) == "waiting"
    assert schedule_state(None, nothing) == "removed"
    assert schedule_state(dataclasses.replace(info, problems=("x",)), nothing) == "invalid"
    assert schedule_state(info, nothing) == "idle"


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1.5) == "1970-01-01T00:00:01.500Z"
    assert rfc3339(None) is None


def test_readiness_reasons() -> None:
    ok = dict(store_healthy=True, config_loaded=True, last_platform_success=1000.0, platform_error=None, now=1500.0)
    assert readiness(**ok, platform_window_s=600) == []  # type: ignore[arg-type]
    assert readiness(**{**ok, "now": 1601.0}, platform_window_s=600) == ["no successful platform call for 601 s"]  # type: ignore[arg-type]
    never = readiness(
        **{**ok, "last_platform_success": None, "platform_error": "SignatureDoesNotMatch"}, platform_window_s=600
    )  # type: ignore[arg-type]
    assert never == ["no successful platform call yet (last error: SignatureDoesNotMatch)"]
    assert len(readiness(**{**ok, "store_healthy": False, "config_loaded": False}, platform_window_s=600)) == 2  # type: ignore[arg-type]
    assert readiness(**ok, started=False, platform_window_s=600) == ["starting: first reconcile pass"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:9", ("::1", 9)), ("0.0.0.0:0", ("0.0.0.0", 0))],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", ":80", "host:", "host:x", "host:70000"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)
