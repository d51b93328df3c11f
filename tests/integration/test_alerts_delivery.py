"""Alerts end to end on real sockets: AlertManager → Apprise ``json://`` → a webhook receiver on 127.0.0.1.

Covers the issue's promises: one opening and one resolution per alert, 200 alerts as one message, a hanging or
failing target that delays nobody, durable state across a restart on the real store, and no URL secret in any
log line or error.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from relayd.alerts.conditions import AlertFacts
from relayd.alerts.decide import Damping
from relayd.alerts.delivery import DeliveryPolicy
from relayd.alerts.manager import AlertManager
from relayd.alerts.model import AlertKind, Condition, Severity
from relayd.alerts.state import MetaAlertStateStore
from relayd.alerts.targets import AlertTarget
from relayd.backoff import Backoff
from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.logs import configure_logging
from relayd.metrics import Metrics
from relayd.settings import Settings
from relayd.store import Store
from relayd.store.records import SegmentRecord, SegmentState
from tests.webhooks import Receiver, webhook_receiver

TOKEN = "hook-7c1e9a0b5d3f4e21"
FAST = DeliveryPolicy(installation="test", timeout_s=1.0, max_attempts=3, backoff=Backoff(0.05, 2.0, 0.2))
NOW = 1_800_000_000.0
DAMPED = Damping(10.0, 20.0)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver(TOKEN) as rx:
        yield rx


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "state.db")
    yield opened
    await opened.close()


def manager(
    store: Store, urls: Sequence[str], damping: Damping = DAMPED, policy: DeliveryPolicy = FAST
) -> AlertManager:
    return AlertManager(
        targets=[AlertTarget(url=u) for u in urls], state_store=MetaAlertStateStore(store), metrics=Metrics(),
        damping=damping, delivery=policy,
    )  # fmt: skip


class Running:
    """A manager's ``run`` as a task, stopped (and awaited) on exit."""

    def __init__(self, target: AlertManager) -> None:
        self.manager = target
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AlertManager:
        self.task = asyncio.create_task(self.manager.run(self.stop), name="test-alerts")
        return self.manager

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def failing_segment(index: int = 0) -> SegmentRecord:
    return SegmentRecord(
        key=SegmentKey(f"news.{index}"), schedule_id=ScheduleId("news"), index=index, occurrence=None,
        start=int(NOW - 100), end=int(NOW + 10_000), title="rdX", group=None, spec_hash="h", body={},
        task_id=TaskId("t1"), state=SegmentState.FAILED, attempts=8, last_error="Relaunch: InternalError",
    )  # fmt: skip


def facts(*segments: SegmentRecord) -> AlertFacts:
    return AlertFacts(segments=segments, started_at=NOW - 1000, last_platform_success=NOW)


def outage(count: int) -> list[Condition]:
    return [Condition(AlertKind.SEGMENT_FAILING, f"s{i:03d}.0", Severity.CRITICAL, "down") for i in range(count)]


async def test_a_failing_segment_is_told_once_opened_and_once_resolved(receiver: Receiver, store: Store) -> None:
    alerts = manager(store, [receiver.url("ok")])
    async with Running(alerts):
        await alerts.evaluate(facts(failing_segment()), NOW)
        await alerts.evaluate(facts(failing_segment()), NOW + 5)
        assert receiver.got("ok") == []  # damped: not held for 10 s yet
        await alerts.evaluate(facts(failing_segment()), NOW + 10)
        (opened,) = await receiver.wait_for("ok", 1)
        assert opened["type"] == "failure" and "OPENED critical: segment_failing news.0" in opened["title"]
        assert "InternalError" in opened["message"]
        assert [a.subject for a in alerts.open_alerts()] == ["news.0"]
        for offset in (11, 15, 20, 29):
            await alerts.evaluate(facts(failing_segment()) if offset == 15 else facts(), NOW + offset)
        await alerts.evaluate(facts(), NOW + 40)
        bodies = await receiver.wait_for("ok", 2)
        assert bodies[1]["type"] == "success" and "RESOLVED: segment_failing news.0" in bodies[1]["title"]
        await until(lambda: alerts.owed() == 0)
    assert len(receiver.got("ok")) == 2 and alerts.open_alerts() == []


async def test_two_hundred_alerts_at_once_are_one_message_per_target(receiver: Receiver, store: Store) -> None:
    alerts = manager(store, [receiver.url("ok"), receiver.url("other")], Damping(0.0, 0.0))
    async with Running(alerts):
        await alerts.apply(outage(200), NOW)
        (first,) = await receiver.wait_for("ok", 1)
        (second,) = await receiver.wait_for("other", 1)
        await until(lambda: alerts.owed() == 0)
    assert first["title"] == "[relayd test] 200 alerts: 200 opened"
    assert "segment_failing ×200 (critical): s000.0" in first["message"] and "and 195 more" in first["message"]
    assert second["title"] == first["title"]
    assert len(receiver.got("ok")) == len(receiver.got("other")) == 1


async def test_a_hanging_or_failing_target_delays_neither_evaluation_nor_other_targets(
    receiver: Receiver, store: Store
) -> None:
    patient = DeliveryPolicy(installation="test", timeout_s=5.0, max_attempts=3, backoff=Backoff(0.05, 2.0, 0.2))
    urls = [receiver.url("hang"), receiver.url("fail"), receiver.url("ok")]
    alerts = manager(store, urls, Damping(0.0, 0.0), patient)
    async with Running(alerts):
        started = time.monotonic()
        await alerts.apply(outage(3), NOW)
        evaluated = time.monotonic() - started
        (body,) = await receiver.wait_for("ok", 1)
        ok_after = body["_at"] - started
        await receiver.wait_for("fail", FAST.max_attempts)  # retried, then given up
        assert receiver.got("hang") == []  # still hanging: never answered
    # Generous bounds under a loaded machine, yet well below the hanging target's 5 s timeout that it would add.
    assert evaluated < 0.5
    assert ok_after < 2.5


async def test_a_restart_sends_nothing_twice_and_resolves_what_cleared_meanwhile(
    receiver: Receiver, store: Store
) -> None:
    first = manager(store, [receiver.url("ok")], Damping(0.0, 30.0))
    async with Running(first):
        await first.apply(outage(2), NOW)
        await receiver.wait_for("ok", 1)
        await until(lambda: first.owed() == 0)
    second = manager(store, [receiver.url("ok")], Damping(0.0, 30.0))  # a new process on the same state
    assert sorted(a.subject for a in second.open_alerts()) == ["s000.0", "s001.0"]
    async with Running(second):
        await second.apply(outage(2)[:1], NOW + 600)  # s001 cleared while relayd was down
        await second.apply(outage(2)[:1], NOW + 630)
        bodies = await receiver.wait_for("ok", 2)
        await until(lambda: second.owed() == 0)
    assert len(bodies) == 2
    assert "RESOLVED: segment_failing s001.0" in bodies[1]["title"]
    assert [a.subject for a in second.open_alerts()] == ["s000.0"]


async def test_a_notification_owed_at_stop_is_delivered_after_the_restart(receiver: Receiver, store: Store) -> None:
    receiver.failing.add("flaky")
    first = manager(store, [receiver.url("flaky")], Damping(0.0, 0.0))
    async with Running(first):
        await first.apply(outage(1), NOW)
        await receiver.wait_for("flaky", 1)  # the target failed; the retry is pending when we stop
    assert first.owed() == 1
    receiver.failing.clear()
    second = manager(store, [receiver.url("flaky")], Damping(0.0, 0.0))
    async with Running(second):
        await until(lambda: second.owed() == 0)
    delivered = receiver.got("flaky")
    assert "OPENED critical: segment_failing s000.0" in delivered[-1]["title"]
    assert all("OPENED" in b["title"] for b in delivered)


async def test_no_secret_of_an_alert_url_reaches_logs_or_errors(receiver: Receiver, store: Store) -> None:
    urls = [receiver.url("fail"), f"json://user:{TOKEN}pw@127.0.0.1:1/refused/{TOKEN}"]
    settings = Settings(alert_urls=urls, alert_open_after=0, alert_send_attempts=2, alert_retry_base=0.05)
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream, secrets=settings.secret_values())
    alerts = AlertManager.from_settings(settings, store=store, metrics=Metrics())
    async with Running(alerts):
        failures = await alerts.send_test()
        await alerts.apply(outage(1), time.time())
        await until(lambda: alerts.owed() == 0, timeout=60)
    lines = stream.getvalue().splitlines()
    assert any(json.loads(line)["event"] == "alert_delivery_gave_up" for line in lines)
    assert len(failures) == 2 and all("***" in f for f in failures)
    text = "\n".join([*lines, *failures, json.dumps(settings.redacted()), Metrics().render().decode()])
    assert TOKEN not in text
