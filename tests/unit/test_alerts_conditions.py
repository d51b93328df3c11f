"""Condition extraction: each rule from plain facts, with the messages naming what is wrong."""

from __future__ import annotations

from relayd.alerts.conditions import (
    CREDENTIAL_CODES,
    INSTALLATION,
    REMOVAL_GUARD,
    AlertFacts,
    ConditionPolicy,
    StreamStall,
    conditions,
)
from relayd.alerts.model import AlertKind, Severity
from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.store.records import SegmentRecord, SegmentState
from relayd.volc import codes

NOW = 1_000_000.0
POLICY = ConditionPolicy(prepare_ahead=3600.0, restart_max_attempts=8, platform_unreachable_after=600.0)


def seg(index: int = 0, *, start: float = NOW - 100, end: float = NOW + 100, **changes: object) -> SegmentRecord:
    fields: dict = {
        "key": SegmentKey(f"news.{index}"), "schedule_id": ScheduleId("news"), "index": index, "occurrence": None,
        "start": int(start), "end": int(end), "title": "rdX", "group": None, "spec_hash": "h", "body": {},
        "task_id": TaskId("t1"), "state": SegmentState.RUNNING,
    }  # fmt: skip
    fields.update(changes)
    return SegmentRecord(**fields)


def healthy(**changes: object) -> AlertFacts:
    base: dict = {"started_at": NOW - 5000, "last_platform_success": NOW - 1}
    base.update(changes)
    return AlertFacts(**base)


def kinds(facts: AlertFacts, policy: ConditionPolicy = POLICY) -> list[tuple[AlertKind, str]]:
    return [(c.kind, c.subject) for c in conditions(facts, NOW, policy)]


def test_healthy_facts_give_no_condition() -> None:
    assert (
        kinds(healthy(segments=[seg(), seg(1, start=NOW + 7200, end=NOW + 9000, state=SegmentState.SCHEDULED)])) == []
    )


def test_a_failed_segment_in_its_window_is_failing_with_its_last_error() -> None:
    failed = seg(state=SegmentState.FAILED, attempts=8, last_error="InvalidParam: x", last_request_id="req-1")
    (found,) = conditions(healthy(segments=[failed]), NOW, POLICY)
    assert (found.kind, found.subject, found.severity) == (AlertKind.SEGMENT_FAILING, "news.0", Severity.CRITICAL)
    assert "InvalidParam: x" in found.message and "req-1" in found.message and "news" in found.message
    assert found.links == ("relayd status news",)


def test_failing_needs_the_window_open_and_the_budget_spent() -> None:
    past = seg(state=SegmentState.FAILED, start=NOW - 200, end=NOW - 100)
    retrying = seg(state=SegmentState.RETRYING, attempts=3)
    spent = seg(1, state=SegmentState.RETRYING, attempts=8)
    assert kinds(healthy(segments=[past, retrying, spent])) == [(AlertKind.SEGMENT_FAILING, "news.1")]


def test_a_segment_whose_task_cannot_be_created_inside_its_window_is_failing() -> None:
    stuck = seg(state=SegmentState.PENDING, task_id=None, last_error="AccessDenied")
    starting = seg(1, state=SegmentState.PENDING, task_id=None)  # no error yet: being created right now
    assert kinds(healthy(segments=[stuck, starting])) == [(AlertKind.SEGMENT_FAILING, "news.0")]


def test_handoff_at_risk_when_less_than_half_of_prepare_ahead_remains_unconfirmed() -> None:
    soon = seg(1, start=NOW + 1000, end=NOW + 5000, state=SegmentState.CREATING, task_id=None)
    later = seg(2, start=NOW + 2000, end=NOW + 5000, state=SegmentState.PENDING, task_id=None)
    confirmed = seg(3, start=NOW + 1000, end=NOW + 5000, state=SegmentState.SCHEDULED)
    (found,) = conditions(healthy(segments=[soon, later, confirmed]), NOW, POLICY)
    assert (found.kind, found.subject, found.severity) == (AlertKind.HANDOFF_AT_RISK, "news.1", Severity.WARNING)
    assert "17 min" in found.message


def test_deleted_and_removing_segments_are_ignored() -> None:
    gone = seg(state=SegmentState.FAILED, deleted_at=NOW - 1)
    removing = seg(1, state=SegmentState.REMOVING)
    assert kinds(healthy(segments=[gone, removing])) == []


def test_credential_codes_reject_and_all_exist_in_the_platform_table() -> None:
    assert all(codes.lookup(code) is not None for code in CREDENTIAL_CODES)
    found = conditions(healthy(platform_error="SignatureDoesNotMatch"), NOW, POLICY)
    assert [(c.kind, c.subject) for c in found] == [(AlertKind.CREDENTIALS_REJECTED, INSTALLATION)]
    assert "SignatureDoesNotMatch" in found[0].message
    assert kinds(healthy(platform_error="FlowLimitExceeded")) == []


def test_platform_unreachable_after_silence_counted_from_start_up_when_never_reached() -> None:
    assert kinds(healthy(last_platform_success=NOW - 599)) == []
    assert kinds(healthy(last_platform_success=NOW - 600)) == [(AlertKind.PLATFORM_UNREACHABLE, INSTALLATION)]
    assert kinds(healthy(last_platform_success=None, started_at=NOW - 100)) == []
    (never,) = conditions(healthy(last_platform_success=None, started_at=NOW - 700), NOW, POLICY)
    assert "since start-up" in never.message


def test_config_problems_are_one_alert_per_file_plus_held_removals() -> None:
    facts = healthy(
        config_problems=["a.toml:3: window: bad", "a.toml:9: source: missing", "b.yaml:1: id: duplicate"],
        held_removals=[ScheduleId("x"), ScheduleId("y")],
    )
    found = conditions(facts, NOW, POLICY)
    assert [(c.kind, c.subject) for c in found] == [
        (AlertKind.CONFIG_PROBLEM, "a.toml"),
        (AlertKind.CONFIG_PROBLEM, "b.yaml"),
        (AlertKind.CONFIG_PROBLEM, REMOVAL_GUARD),
    ]
    assert "window: bad" in found[0].message and "source: missing" in found[0].message
    assert "2 schedule(s) (x, y)" in found[2].message


def test_stream_down_only_when_restarts_did_not_cure_it() -> None:
    streams = {ScheduleId("a"): StreamStall(NOW - 300, 0), ScheduleId("b"): StreamStall(NOW - 300, 2)}
    (found,) = conditions(healthy(streams=streams), NOW, POLICY)
    assert (found.kind, found.subject) == (AlertKind.STREAM_DOWN, "b")
    assert "5 min" in found.message and "2 restart(s)" in found.message


def test_installation_conflict_names_its_evidence() -> None:
    (found,) = conditions(healthy(installation_conflict="3 tasks titled rd… in group live"), NOW, POLICY)
    assert found.kind is AlertKind.INSTALLATION_CONFLICT and "3 tasks" in found.message


def test_console_url_is_linked_when_configured() -> None:
    policy = ConditionPolicy(console_url="https://relay.example.com/console")
    (found,) = conditions(healthy(segments=[seg(state=SegmentState.FAILED)]), NOW, policy)
    assert found.links == ("relayd status news", "https://relay.example.com/console")
