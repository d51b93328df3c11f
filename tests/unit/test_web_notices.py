"""Tolerant parsing of callback bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.web.notices import CallbackEvent, dedupe_key, parse_notice, parse_time, sign_fields

T = 1_700_000_000


@pytest.mark.parametrize(
    ("body", "task", "event"),
    [
        (
            {"TaskId": "t1", "Status": "生效中", "TaskStatus": 2, "EventType": "start", "Time": T},
            "t1",
            CallbackEvent.START,
        ),
        ({"task_id": "t2", "status": "已结束"}, "t2", CallbackEvent.END),
        ({"taskId": "t3", "TaskStatus": 0}, "t3", CallbackEvent.STOP),
        ({"TaskID": "t4", "TaskStatus": "1"}, "t4", CallbackEvent.PENDING),
        ({"TaskId": "t5", "event": "Failed", "Status": "生效中"}, "t5", CallbackEvent.FAIL),
        ({"TaskId": "t6", "Event": "RECOVERED"}, "t6", CallbackEvent.RECOVER),
        ({"TaskId": "t7", "Status": "stopped"}, "t7", CallbackEvent.STOP),
        ({"code": 0, "message": "ok", "data": {"TaskId": "t8", "EventType": "end"}}, "t8", CallbackEvent.END),
        ({"TaskId": "t9", "Type": 1}, "t9", CallbackEvent.UNKNOWN),  # task type 1 = VOD, not an event
        ({"TaskId": "t10", "EventType": "something-new"}, "t10", CallbackEvent.UNKNOWN),
        ({}, None, CallbackEvent.UNKNOWN),
    ],
)
def test_event_and_task(body: dict[str, Any], task: str | None, event: CallbackEvent) -> None:
    notice = parse_notice(body)
    assert (notice.task_id, notice.event) == (task, event)
    assert notice.raw is body


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T, float(T)),
        (T * 1000, float(T)),
        (str(T), float(T)),
        ("2023-11-14T22:13:20Z", float(T)),
        ("2023-11-15T06:13:20+08:00", float(T)),
        ("2023-11-14T22:13:20", None),  # no zone: ambiguous, ignored
        ("yesterday", None),
        (True, None),
        ([T], None),
    ],
)
def test_parse_time(value: Any, expected: float | None) -> None:
    assert parse_time(value) == expected


def test_time_field_spellings() -> None:
    assert parse_notice({"timestamp": T}).time == T
    assert parse_notice({"EventTime": "2023-11-14T22:13:20Z"}).time == T


def test_sign_fields_found_at_top_or_in_data_and_empty_means_absent() -> None:
    assert sign_fields({"sign": "ab", "t": 5}) == ("ab", 5)
    assert sign_fields({"code": 0, "data": {"Sign": "cd", "T": 6}}) == ("cd", 6)
    assert sign_fields({"sign": "", "t": 0}) is None
    assert sign_fields({"TaskId": "x"}) is None


def test_dedupe_key_prefers_event_id() -> None:
    a = parse_notice({"EventId": "e1", "n": 1})
    b = parse_notice({"EventId": "e1", "n": 2})
    assert dedupe_key("k", a, b"one") == dedupe_key("k", b, b"two")
    plain = parse_notice({})
    assert dedupe_key("k", plain, b"one") != dedupe_key("k", plain, b"two")
    assert dedupe_key("k", plain, b"one") != dedupe_key("k2", plain, b"one")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
keys = st.sampled_from(["TaskId", "task_id", "Status", "TaskStatus", "EventType", "Time", "data", "code", "sign", "t"])


@given(st.dictionaries(keys | st.text(max_size=8), json_values, max_size=6))
def test_any_json_object_parses_without_raising(body: dict[str, Any]) -> None:
    body = json.loads(json.dumps(body))
    notice = parse_notice(body)
    assert isinstance(notice.event, CallbackEvent)
    sign_fields(body)


def test_parse_time_of_huge_or_non_finite_numbers_is_none() -> None:
    assert parse_time(10**4000) is None
    assert parse_time("1" + "0" * 4000) is None
    assert parse_time(float("inf")) is None
    assert parse_time(float("nan")) is None


@pytest.mark.parametrize(
    ("body", "event"),
    [
        # Alibaba-like: TaskStatus 2 with a reason is "abnormal, recovering" (still 生效中), never a start.
        ({"TaskId": "a", "TaskName": "rd", "TaskStatus": 2, "Reason": "PullStreamFailed", "Time": T}, "fail"),
        ({"TaskId": "a", "TaskName": "rd", "TaskStatus": -1, "Reason": "PushStreamFailed", "Time": T}, "fail"),
        ({"TaskId": "a", "TaskName": "rd", "TaskStatus": "-1", "Time": T}, "fail"),
        ({"TaskId": "a", "TaskName": "rd", "TaskStatus": 3, "Time": T}, "end"),
        # Tencent-like: event_type 314 with callback_event.
        ({"event_type": 314, "task_id": "a", "callback_event": "TaskAlarm", "alarm_type": "PushStreamFailed"}, "fail"),
        ({"event_type": 314, "task_id": "a", "callback_event": "TaskAlarm", "alarm_type": "PullFileUnstable"}, "fail"),
        ({"event_type": 314, "task_id": "a", "callback_event": "TaskExit", "event_time": T}, "stop"),
        ({"event_type": 314, "task_id": "a", "callback_event": "TaskStart", "event_time": T}, "start"),
        # relayd's own guess keeps its meaning.
        ({"TaskId": "a", "Status": "生效中", "TaskStatus": 2, "EventType": "start", "Time": T}, "start"),
        ({"TaskId": "a", "Status": "生效中", "TaskStatus": 2, "EventType": "fail", "Time": T}, "fail"),
    ],
)
def test_neighbour_schemas_are_read_for_what_they_mean(body: dict[str, Any], event: str) -> None:
    notice = parse_notice(body)
    assert notice.task_id == "a" and notice.event == CallbackEvent(event)


def test_a_tencent_body_gives_its_time_and_event_id() -> None:
    body = {"event_type": 314, "task_id": "a", "callback_event": "TaskStart", "event_time": T, "event_id": "e1"}
    notice = parse_notice(body)
    assert notice.time == T and notice.event_id == "e1"
