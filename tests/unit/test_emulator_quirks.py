"""Quirk sets and profiles (pure), and the callback body each schema builds for each event."""

from __future__ import annotations

import dataclasses

import pytest

from relayd.emulator.callbacks import payload
from relayd.emulator.journal import identify
from relayd.emulator.quirks import (
    PROFILES,
    CallbackSchema,
    Destination,
    Failure,
    Profile,
    QuirkError,
    Quirks,
    describe,
    parse_assignment,
    resolve,
)
from relayd.emulator.tasks import Event, Status


def test_lenient_is_every_default_and_strict_changes_every_open_question() -> None:
    assert PROFILES[Profile.LENIENT] == Quirks() == resolve()
    strict, lenient = PROFILES[Profile.STRICT], Quirks()
    same = [f.name for f in dataclasses.fields(Quirks) if getattr(strict, f.name) == getattr(lenient, f.name)]
    # Only the BytePlus-specific limits are left alone by the strict profile; it refuses a past start without slack.
    assert same == ["title_limit", "create_update_qps", "region"]
    assert strict.past_start_tolerance_s == 0


def test_byteplus_profile() -> None:
    quirks = resolve("byteplus")
    assert (quirks.title_limit.chars, quirks.create_update_qps.value, quirks.region.value) == (
        10,
        "1",
        "ap-singapore-1",
    )
    assert quirks.list_time.value == "Z" and quirks.destination is Destination.SHARED


def test_overrides_apply_on_top_of_a_profile() -> None:
    quirks = resolve("strict", {"failure": "stay-silent", "past_start_tolerance_s": "2.5"})
    assert quirks.failure is Failure.STAY_SILENT and quirks.past_start_tolerance_s == 2.5
    assert quirks.destination is Destination.EXCLUSIVE
    assert quirks.as_json()["failure"] == "stay-silent"


@pytest.mark.parametrize(
    ("profile", "overrides", "message"),
    [
        ("nope", {}, "unknown profile 'nope'; valid profiles: lenient, strict, byteplus"),
        ("lenient", {"destinaton": "exclusive"}, "unknown quirk 'destinaton'; valid quirks: destination,"),
        ("lenient", {"callback_schema": "aliyun"}, "valid values: relayd, alibaba, tencent, none"),
        ("lenient", {"past_start_tolerance_s": "soon"}, "is not a number"),
        ("lenient", {"past_start_tolerance_s": -1}, "must be >= 0"),
    ],
)
def test_typos_name_the_valid_choices(profile: str, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(QuirkError, match=message.replace("(", r"\(")):
        resolve(profile, overrides)


def test_assignments_and_description() -> None:
    assert parse_assignment(" not_found = InvalidParam ") == ("not_found", "InvalidParam")
    with pytest.raises(QuirkError, match="NAME=VALUE"):
        parse_assignment("not_found")
    valid = describe()
    assert valid["relaunch_from"] == ["active", "disabled", "any"]
    assert valid["past_start_tolerance_s"] == ["<number>"] and set(valid) == set(Quirks().as_json())


def event(kind: str, status: Status) -> Event:
    return Event("p-7", "t" * 32, "rdabc", "default", "http://cb", status, kind, 1_800_000_000.0)


@pytest.mark.parametrize(
    ("kind", "status", "alibaba", "tencent"),
    [
        ("start", Status.ACTIVE, (1, None), ("TaskStart", None)),
        ("fail", Status.ACTIVE, (2, "PullStreamFailed"), ("TaskAlarm", "PushStreamFailed")),
        ("fail", Status.DISABLED, (-1, "PullStreamFailed"), ("TaskExit", None)),
        ("recover", Status.ACTIVE, (1, None), ("TaskStart", None)),
        ("stop", Status.DISABLED, (3, None), ("TaskExit", None)),
        ("end", Status.ENDED, (3, None), ("TaskExit", None)),
        ("delete", Status.ACTIVE, (-1, None), ("TaskExit", None)),
        ("update", Status.PENDING, (0, None), None),
    ],
)
def test_callback_schemas(
    kind: str, status: Status, alibaba: tuple[int, str | None], tencent: tuple[str, str | None] | None
) -> None:
    ali = payload(event(kind, status), auth_key=None, now=0, schema=CallbackSchema.ALIBABA)
    assert ali is not None and (ali["TaskStatus"], ali.get("Reason")) == alibaba and ali["TaskId"] == "t" * 32
    ten = payload(event(kind, status), auth_key="k", now=100, schema=CallbackSchema.TENCENT)
    if tencent is None:
        assert ten is None
    else:
        assert ten is not None and (ten["callback_event"], ten.get("alarm_type")) == tencent
        assert ten["event_type"] == 314 and ten["t"] == 700 and len(ten["sign"]) == 32
    assert payload(event(kind, status), auth_key="k", now=0, schema=CallbackSchema.NONE) is None
    relayd = payload(event(kind, status), auth_key=None, now=0)
    assert relayd is not None and relayd["EventType"] == kind and relayd["TaskStatus"] == int(status)


def test_instance_identity() -> None:
    assert identify({"X-Relayd-Instance": " node-2 ", "User-Agent": "x relayd-instance/other"}) == "node-2"
    assert identify({"User-Agent": "relayd-live-client/0.1 relayd-instance/node-3"}) == "node-3"
    assert identify({"User-Agent": "volc-sdk-python/v1.0.229"}) == ""
