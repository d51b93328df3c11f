"""The probe's reading of answers (pure): what counts as an answer, and what stays unknown."""

from __future__ import annotations

import pytest

from relayd.platform.facts import CallbackSchema, FailureShows, PlatformFacts, RelaunchFrom
from relayd.probe import answers
from relayd.probe.answers import Attempt
from relayd.probe.strategies import strategies

OK = Attempt("try", accepted=True)
NO = Attempt("try", accepted=False, code="InvalidParam", http_status=400, request_id="r1", message="DstAddr: taken")
TIMEOUT = Attempt("try", accepted=False, code="Timeout", conclusive=False)


def test_destination_shared_leaves_touching_unknown() -> None:
    exclusive, touching = answers.destination(OK, None)
    assert (exclusive.value, touching.value) == (False, None)


@pytest.mark.parametrize(("touch", "expected"), [(OK, True), (NO, False), (TIMEOUT, None)])
def test_destination_exclusive_reads_touching(touch: Attempt, expected: bool | None) -> None:
    exclusive, touching = answers.destination(NO, touch)
    assert exclusive.value is True
    assert touching.value is expected


def test_inconclusive_refusal_is_not_an_answer() -> None:
    assert answers.destination(TIMEOUT, None)[0].value is None
    assert answers.update_running(TIMEOUT).value is None
    assert answers.past_start(NO).value is False
    assert "request_id=r1" in answers.past_start(NO).evidence


@pytest.mark.parametrize(
    ("active", "disabled", "expected"),
    [
        (OK, NO, RelaunchFrom.ACTIVE),
        (NO, OK, RelaunchFrom.DISABLED),
        (OK, OK, RelaunchFrom.ANY),
        (NO, NO, None),
        (OK, None, None),
        (TIMEOUT, OK, None),
    ],
)
def test_relaunch_from(active: Attempt, disabled: Attempt | None, expected: RelaunchFrom | None) -> None:
    assert answers.relaunch_from(active, disabled).value is expected


def test_not_found_codes_are_distinct_refusals_in_order() -> None:
    other = Attempt("try", accepted=False, code="ResourceNotFound", http_status=404)
    assert answers.not_found_codes([NO, other, NO, TIMEOUT, OK]).value == ("InvalidParam", "ResourceNotFound")


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (["2025-01-01T00:00:00Z"], True),
        (["2025-01-01T08:00:00+08:00"], False),
        (["2025-01-01T00:00:00Z", "2025-01-01T08:00:00+08:00"], None),
        (["1735689600"], None),
        ([], None),
    ],
)
def test_list_time(times: list[str], expected: bool | None) -> None:
    assert answers.list_time_utc(times).value is expected


def test_title_search_tries_20_then_bisects_down_to_the_limit() -> None:
    limit = 13
    trials: dict[int, Attempt] = {}
    while (n := answers.next_title_trial(10, 20, trials)) is not None:
        trials[n] = OK if n <= limit else NO
    assert list(trials) == [20, 15, 12, 13, 14]
    assert answers.title_limit(10, trials).value == limit


def test_title_limit_unknown_when_a_trial_proves_nothing() -> None:
    trials = {20: NO, 15: TIMEOUT}
    assert answers.next_title_trial(10, 20, trials) is None
    assert answers.title_limit(10, trials).value is None
    assert answers.title_limit(10, {20: OK}).value == 20


def test_qps_from_throttling_answers_only() -> None:
    assert answers.create_update_qps(8, 0, 0, 1).value == 8
    assert answers.create_update_qps(8, 2, 0, 1).value == 1
    assert answers.create_update_qps(8, 2, 1, 1).value is None
    assert answers.create_update_qps(1, 0, 0, 1).value == 1  # started at the configured 1/s: never throttled
    assert answers.create_update_qps(1, 1, 0, 1).value is None  # throttled at 1/s already: the limit is lower
    assert answers.create_update_qps(0.5, 1, 0, 1).value is None
    # Throttled once at 1/s, then every one of enough sends at 1/s with slack passed: arrival jitter, the limit is 1/s.
    jitter = answers.create_update_qps(1, 1, 0, 1, sent_slow=answers.JITTER_EVIDENCE)
    assert jitter.value == 1 and "arrival jitter" in jitter.evidence
    assert answers.create_update_qps(1, 1, 0, 1, sent_slow=answers.JITTER_EVIDENCE - 1).value is None  # too few
    assert answers.create_update_qps(1, 1, 1, 1, sent_slow=10).value is None  # throttled again: lower
    assert answers.create_update_qps(8, 2, 0, 1, sent_slow=10).value == 1  # from 8/s: the slow pace, as before


@pytest.mark.parametrize(
    ("body", "schema"),
    [
        ({"TaskId": "t", "Status": "生效中", "TaskStatus": 2, "EventType": "start"}, CallbackSchema.RELAYD),
        ({"TaskId": "t", "TaskName": "pb", "TaskStatus": 2, "Reason": "PullStreamFailed"}, CallbackSchema.ALIBABA),
        ({"event_type": 314, "task_id": "t", "callback_event": "TaskStart"}, CallbackSchema.TENCENT),
        ({"hello": 1}, None),
    ],
)
def test_schema_of_one_body(body: dict[str, object], schema: CallbackSchema | None) -> None:
    assert answers.schema_of(body) is schema


def test_callback_schema_none_only_when_the_receiver_was_reachable() -> None:
    assert answers.callback_schema([], True, 3).value is CallbackSchema.NONE
    assert answers.callback_schema([], False, 3).value is None
    mixed = [{"EventType": "start", "TaskId": "t"}, {"event_type": 314}]
    assert answers.callback_schema(mixed, True, 3).value is None


def test_callback_evidence_drops_the_signature() -> None:
    body = {"TaskId": "t", "TaskName": "pb", "TaskStatus": 1, "sign": "abcdef0123", "t": 1735689600}
    evidence = answers.callback_schema([body], True, 3).evidence
    assert "abcdef0123" not in evidence and "TaskName='pb'" in evidence


def test_every_fact_has_a_strategy_known_or_not() -> None:
    unknown, known = strategies(PlatformFacts()), strategies(PlatformFacts(update_running=False, title_limit=10))
    assert set(unknown) == set(known)
    assert "next segment" in known["update_running"] and "10 characters" in known["title_limit"]


FAIL_ALIBABA = {"TaskId": "t1", "TaskName": "pbabcde001", "TaskStatus": 2, "Reason": "PullStreamFailed"}
FAIL_TENCENT = {"event_type": 314, "task_id": "t1", "callback_event": "TaskAlarm", "alarm_type": "PushStreamFailed"}
START_RELAYD = {"TaskId": "t1", "EventType": "start", "Status": "生效中"}


@pytest.mark.parametrize(
    ("statuses", "bodies", "receiving", "expected"),
    [
        (["未开始", "生效中", "停用"], [], True, FailureShows.DISABLE),
        (["生效中", "停用"], [], False, FailureShows.DISABLE),  # the listing shows it without a receiver
        (["生效中"], [START_RELAYD, FAIL_ALIBABA], True, FailureShows.STAY_CALLBACK),
        (["生效中"], [FAIL_TENCENT], True, FailureShows.STAY_CALLBACK),
        (["生效中"], [START_RELAYD], True, FailureShows.STAY_SILENT),
        (["生效中"], [], False, None),  # no receiver: silence proves nothing
        (["未开始"], [], True, None),  # never ran
        ([], [], True, None),
    ],
)
def test_failure_shows(
    statuses: list[str], bodies: list[dict[str, object]], receiving: bool, expected: FailureShows | None
) -> None:
    answer = answers.failure_shows(statuses, bodies, receiving, "watched")
    assert answer.value is expected
    assert " -> ".join(statuses) in answer.evidence


def test_about_task_by_id_in_any_schema_else_by_title() -> None:
    assert answers.about_task(FAIL_ALIBABA, "t1", "pbabcde001")
    assert answers.about_task(FAIL_TENCENT, "t1", "x")
    assert not answers.about_task(FAIL_TENCENT, "t2", "x")
    assert answers.about_task({"Name": "pbabcde001", "Event": "fail"}, "t9", "pbabcde001")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (FailureShows.DISABLE, "turns 停用"),
        (FailureShows.STAY_CALLBACK, "failure callback triggers"),
        (FailureShows.STAY_SILENT, "only the stream health check"),
        (None, "any schema"),
    ],
)
def test_failure_strategy(value: FailureShows | None, words: str) -> None:
    assert words in strategies(PlatformFacts(failure_shows=value))["failure_shows"]
