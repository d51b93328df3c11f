"""``relayd probe`` against the emulator: every profile and every single quirk flipped alone is identified correctly;
the probe leaves nothing behind, also when interrupted, and never touches a task it did not create.

The expected facts are derived from the emulator's quirks (the answers it plays), so each case checks that the
probe reads the platform's answers, not a table of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from relayd.emulator import Emulator
from relayd.emulator.quirks import (
    CallbackSchema,
    CreateUpdateQps,
    Destination,
    Failure,
    ListTime,
    NotFound,
    PastStart,
    Quirks,
    Region,
    RelaunchFrom,
    TitleLimit,
    UpdateRunning,
)
from relayd.probe import DEFAULT_SOURCE, ProbeOptions, ProbeReport, run_probe
from relayd.probe.session import shielded
from relayd.volc import CreateTaskRequest, Credentials, LiveClient

EmulatorFactory = Callable[..., Awaitable[Emulator]]
WRITE_QPS = 10.0
TIMEOUT_S = 90.0
LIVE_SOURCE = "rtmp://src.example.com/live/probe"
"""A source the emulator relays (only ``.invalid`` sources fail by themselves), so the running trials answer."""
FAILURE_WAIT_S = 6.0
"""The emulator fails an unroutable relay 1 s after it starts: 6 s tells silence from a late sign under load."""


def credentials(emu: Emulator) -> Credentials:
    return Credentials(emu.config.access_key, emu.config.secret_key, region=emu.state.quirks.region.value)


async def probe(emu: Emulator, **options: Any) -> ProbeReport:
    defaults: dict[str, Any] = {"source": LIVE_SOURCE, "failure_wait_s": FAILURE_WAIT_S, "listen": "127.0.0.1:0"}
    opts = ProbeOptions(write_qps=WRITE_QPS, callback_wait_s=3.0, **(defaults | options))
    return await asyncio.wait_for(run_probe(emu.url, credentials(emu), opts), TIMEOUT_S)


def expected(quirks: Quirks) -> dict[str, Any]:
    """The facts a correct probe finds on an emulator playing ``quirks``."""
    exclusive = quirks.destination is not Destination.SHARED
    facts: dict[str, Any] = {
        "destination_exclusive": exclusive,
        "update_running": quirks.update_running is UpdateRunning.ALLOWED,
        "past_start": quirks.past_start is PastStart.ACCEPTED,
        "relaunch_from": quirks.relaunch_from.value,
        "not_found_codes": [quirks.not_found.value],
        "callback_schema": quirks.callback_schema.value,
        "list_time_utc": quirks.list_time is ListTime.UTC,
        "title_limit": quirks.title_limit.chars,
        "create_update_qps": 1.0 if quirks.create_update_qps is CreateUpdateQps.ONE else WRITE_QPS,
        "failure_shows": failure_shows(quirks),
    }
    if exclusive:
        facts["destination_touching_ok"] = quirks.destination is Destination.EXCLUSIVE_TOUCHING_OK
    return facts


def failure_shows(quirks: Quirks) -> str:
    """How a failing relay shows: the ``failure`` quirk, except that a platform sending no callbacks is silent."""
    if quirks.failure is Failure.STAY_CALLBACK and quirks.callback_schema is CallbackSchema.NONE:
        return Failure.STAY_SILENT.value
    return quirks.failure.value


def assert_clean(emu: Emulator, report: ProbeReport) -> None:
    assert report.leftovers == []
    assert emu.tasks() == []
    assert all(task["DeletedAt"] is not None for task in emu.history())
    assert report.group not in {g.name for g in emu.state.groups.listing([0])}


SINGLE_FLIPS = [
    ("destination", Destination.EXCLUSIVE),
    ("destination", Destination.EXCLUSIVE_TOUCHING_OK),
    ("update_running", UpdateRunning.REFUSED),
    ("past_start", PastStart.REFUSED),
    ("failure", Failure.STAY_CALLBACK),
    ("failure", Failure.STAY_SILENT),
    ("relaunch_from", RelaunchFrom.DISABLED),
    ("relaunch_from", RelaunchFrom.ANY),
    ("not_found", NotFound.TASK_NOT_EXIST),
    ("not_found", NotFound.INVALID_PARAM),
    ("callback_schema", CallbackSchema.ALIBABA),
    ("callback_schema", CallbackSchema.TENCENT),
    ("callback_schema", CallbackSchema.NONE),
    ("list_time", ListTime.UTC),
    ("title_limit", TitleLimit.BYTEPLUS),
    ("create_update_qps", CreateUpdateQps.ONE),
    ("region", Region.AP_SINGAPORE_1),
]


@pytest.mark.parametrize("profile", ["lenient", "strict", "byteplus"])
async def test_probe_identifies_each_profile(emulator: EmulatorFactory, profile: str) -> None:
    emu = await emulator(profile=profile, admin=True)
    report = await probe(emu)
    assert report.facts.known() == expected(emu.state.quirks)
    assert report.facts.source == "probe"
    assert_clean(emu, report)


@pytest.mark.parametrize(("quirk", "value"), SINGLE_FLIPS, ids=[f"{q}={v.value}" for q, v in SINGLE_FLIPS])
async def test_probe_identifies_each_single_quirk(emulator: EmulatorFactory, quirk: str, value: Any) -> None:
    emu = await emulator(quirks={quirk: value.value}, admin=True)
    assert getattr(emu.state.quirks, quirk) is value
    report = await probe(emu)
    assert report.facts.known() == expected(emu.state.quirks)
    assert_clean(emu, report)


async def test_probe_evidence_names_codes_request_ids_and_bodies(emulator: EmulatorFactory) -> None:
    emu = await emulator(profile="strict", admin=True)
    report = await probe(emu)
    evidence = report.facts.evidence
    assert "InvalidParam" in evidence["destination_exclusive"]
    assert "request_id=" in evidence["destination_exclusive"]
    assert "TaskStatus=" in evidence["callback_schema"]  # the captured Alibaba-style bodies
    assert report.callbacks and all(body["TaskName"].startswith("pb") for body in report.callbacks)
    assert "restart: Stop, then Continue the failing 生效中 task" in report.strategy["relaunch_from"]


async def test_probe_at_the_configured_create_update_pace_is_never_throttled(emulator: EmulatorFactory) -> None:
    """``platform = "byteplus"`` sets create_update_qps = 1: the probe starts at that pace, as the daemon does."""
    emu = await emulator(profile="byteplus", admin=True)
    report = await probe(emu, create_update_qps=1.0)
    assert report.facts.create_update_qps == 1.0
    # Sent a slot apart, two requests can still arrive closer on a loaded machine: one such throttle is allowed, and
    # must then be read as jitter (the answer stays 1/s), never as a lower limit.
    throttled = emu.stats()["responses"].get("FlowLimitExceeded", 0)
    evidence = report.facts.evidence["create_update_qps"]
    assert throttled <= 1
    assert ("no throttling answer to Create/Update at 1/s" in evidence) == (throttled == 0), evidence
    assert ("arrival jitter" in evidence) == (throttled == 1), evidence
    assert emu.stats()["max_requests_per_1s"]["write"] <= WRITE_QPS
    assert_clean(emu, report)


async def test_a_platform_stricter_than_the_setting_is_detected_after_one_throttle(emulator: EmulatorFactory) -> None:
    emu = await emulator(profile="byteplus", admin=True)
    report = await probe(emu, create_update_qps=WRITE_QPS)  # the setting believes 10/s; the platform allows 1/s
    assert report.facts.create_update_qps == 1.0
    assert "1 throttling answer(s) to Create/Update at 10/s; none at 1/s" in report.facts.evidence["create_update_qps"]
    assert emu.stats()["responses"].get("FlowLimitExceeded", 0) == 1
    assert emu.stats()["max_requests_per_1s"]["write"] <= WRITE_QPS


async def test_probe_without_receiver_leaves_callback_schema_unknown(emulator: EmulatorFactory) -> None:
    emu = await emulator(admin=True)
    report = await probe(emu, listen=None)
    assert "callback_schema" not in report.facts.known()
    assert "public_url" in report.facts.evidence["callback_schema"]
    assert report.facts.known()["failure_shows"] == "disable"  # 停用 in the listing needs no callback
    assert_clean(emu, report)


async def test_probe_without_receiver_does_not_read_silence_as_silent_failure(emulator: EmulatorFactory) -> None:
    emu = await emulator(quirks={"failure": "stay-silent"}, admin=True)
    report = await probe(emu, listen=None)
    assert "failure_shows" not in report.facts.known()
    assert "silence proves nothing" in report.facts.evidence["failure_shows"]
    assert_clean(emu, report)


@pytest.mark.parametrize(
    ("failure", "strategy"),
    [("disable", "turns 停用"), ("stay-callback", "failure callback triggers"), ("stay-silent", "health check")],
)
async def test_probe_failure_evidence_and_strategy(emulator: EmulatorFactory, failure: str, strategy: str) -> None:
    emu = await emulator(quirks={"failure": failure}, admin=True)
    report = await probe(emu)
    evidence = report.facts.evidence["failure_shows"]
    assert "relayd-probe.invalid/live/failing" in evidence  # its own unroutable source: the operator's is live
    assert ("停用" in evidence) is (failure == "disable")
    assert ("EventType='fail'" in evidence) is (failure != "stay-silent")
    assert strategy in report.strategy["failure_shows"]
    assert_clean(emu, report)


async def test_probe_with_the_default_source_fails_it_on_purpose(emulator: EmulatorFactory) -> None:
    """The default (unroutable) source is the failure trial's own. Where a failing relay turns 停用 the trials on the
    running task race its failure, as on a real platform (hence ``--source``): whatever they answer is right or
    unknown, never wrong."""
    emu = await emulator(admin=True)
    report = await probe(emu, source=DEFAULT_SOURCE)
    known = report.facts.known()
    assert known["failure_shows"] == "disable"
    assert DEFAULT_SOURCE in report.facts.evidence["failure_shows"]
    right = expected(emu.state.quirks)
    assert {name: value for name, value in known.items() if right.get(name) != value} == {}
    assert_clean(emu, report)


async def test_probe_unreachable_public_url_is_reported_not_read_as_no_callbacks(emulator: EmulatorFactory) -> None:
    emu = await emulator(admin=True)
    report = await probe(emu, public_url="http://127.0.0.1:9")  # discard port: nothing answers there
    assert "callback_schema" not in report.facts.known()
    assert "not reachable" in report.facts.evidence["callback_schema"]
    assert_clean(emu, report)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_interrupted_probe_leaves_no_task_or_group(emulator: EmulatorFactory) -> None:
    emu = await emulator(profile="strict", admin=True)
    run = asyncio.create_task(probe(emu))
    await wait_until(lambda: len(emu.tasks()) >= 2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert emu.tasks() == []
    assert emu.history() and all(task["DeletedAt"] is not None for task in emu.history())
    assert not any(g.name.startswith("relaydprobe") for g in emu.state.groups.listing([0]))


async def test_probe_never_touches_foreign_tasks(emulator: EmulatorFactory) -> None:
    # The operator's task below starts at int(now), which the strict profile (no slack for a past StartTime) would
    # refuse: a few seconds of slack let it in; the probe's own past-start trial is minutes in the past anyway.
    emu = await emulator(profile="strict", quirks={"past_start_tolerance_s": 5}, admin=True)
    now = int(time.time())
    foreign = [
        # a look-alike Title (the probe's prefix, another run) in the default group, on the probe's own sink
        CreateTaskRequest(
            title="pbzzzzz001",
            start_time=now + 86400,
            end_time=now + 90000,
            src_addr="rtmp://src.example.com/live/a",
            dst_addr="rtmp://relayd-probe.invalid/live/sink",
        ),
        # an operator's task running right now elsewhere
        CreateTaskRequest(
            title="operator1",
            start_time=now,
            end_time=now + 3600,
            src_addr="rtmp://src.example.com/live/b",
            dst_addr="rtmp://push.example.com/live/b",
        ),
    ]
    async with LiveClient(emu.url, credentials(emu)) as client:
        ids = {await client.create_task(request) for request in foreign}
    before = sorted((t for t in emu.tasks() if t["TaskId"] in ids), key=lambda t: t["TaskId"])
    report = await probe(emu)
    after = sorted((t for t in emu.tasks() if t["TaskId"] in ids), key=lambda t: t["TaskId"])
    assert after == before
    assert {t["TaskId"] for t in emu.tasks()} == ids
    assert report.leftovers == []


async def test_running_task_disabled_by_itself_leaves_its_answers_unknown(emulator: EmulatorFactory) -> None:
    """Where a relay from an unreachable source turns 停用 within seconds, the Update and Relaunch trials would
    answer another question: the probe reports them unknown (with why) instead of misreading them."""
    emu = await emulator(profile="lenient", admin=True)

    def running_probe_task() -> str | None:
        """The probe's task that starts "now" (not the past-start one), once it relays."""
        return next(
            (
                t["TaskId"]
                for t in emu.history()
                if t["DeletedAt"] is None
                and t["StartTime"] > t["CreatedAt"]
                and t["Active"]
                and t["Active"][-1][1] is None
            ),
            None,
        )

    async def fail_it() -> None:
        while (task_id := running_probe_task()) is None:
            await asyncio.sleep(0.01)
        emu.fail_task(task_id, mode="disable")

    failer = asyncio.create_task(fail_it())
    report = await probe(emu)
    await asyncio.wait_for(failer, 5)
    known = report.facts.known()
    assert "update_running" not in known and "relaunch_from" not in known
    assert "停用" in report.facts.evidence["update_running"]
    assert known["destination_exclusive"] is False  # the other answers stand
    assert_clean(emu, report)


async def test_cleanup_finishes_through_a_second_interrupt() -> None:
    in_trials, cleaning, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def cleanup() -> list[str]:
        cleaning.set()
        await release.wait()
        return ["left"]

    async def probe_body() -> list[str]:
        try:
            in_trials.set()
            await asyncio.Event().wait()  # the trials, interrupted below
        finally:
            return await shielded(cleanup, 30)  # noqa: B012 - the value under test is what cleanup returned

    run = asyncio.create_task(probe_body())
    await asyncio.wait_for(in_trials.wait(), 10)
    run.cancel()  # Ctrl-C
    await asyncio.wait_for(cleaning.wait(), 10)
    run.cancel()  # a second Ctrl-C while cleaning up
    await asyncio.sleep(0)  # deliver it: the cleanup must go on regardless
    assert not run.done()
    release.set()
    assert await asyncio.wait_for(run, 10) == ["left"]
