"""Delivery workers with in-process senders: queue bound, retries, giving up, stopping, crashes, evaluation loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from structlog.testing import capture_logs

from relayd.alerts.conditions import AlertFacts
from relayd.alerts.decide import Damping
from relayd.alerts.delivery import Delivery, DeliveryError, DeliveryPolicy
from relayd.alerts.grouping import Message
from relayd.alerts.manager import AlertManager
from relayd.alerts.model import Alert, AlertKind, Condition, Notification, Severity, Transition
from relayd.alerts.state import MemoryAlertStateStore
from relayd.alerts.targets import AlertTarget
from relayd.backoff import Backoff
from relayd.metrics import Metrics

TARGET = AlertTarget(url="json://hooks.example.com/hook/secret-abcdef")
LABEL = "#1 json://hooks.example.com/***"


class Script:
    """A Sender that answers from a script: "ok", "fail", "crash", or "block" (until ``release``)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.sent: list[Message] = []
        self.release = asyncio.Event()
        self.called = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        answer = self.answers.pop(0) if self.answers else "ok"
        self.called.set()
        if answer == "block":
            await self.release.wait()
        if answer == "fail":
            raise DeliveryError("HTTP 500 from hooks.example.com/hook/secret-abcdef")
        if answer == "crash":
            raise RuntimeError("plugin bug")
        self.sent.append(message)


def note(subject: str) -> Notification:
    condition = Condition(AlertKind.STREAM_DOWN, subject, Severity.CRITICAL, "down")
    return Notification(Transition.OPENED, Alert(condition, 1.0), 1.0)


def delivery(sender: Script, settled: list[list[str]], **policy: object) -> tuple[Delivery, Metrics]:
    metrics = Metrics()
    shape = {"timeout_s": 5.0, "max_attempts": 3, "backoff": Backoff(0.01, 2.0, 0.01), **policy}
    return Delivery(
        [TARGET], metrics=metrics, policy=DeliveryPolicy(**shape),  # type: ignore[arg-type]
        sender_factory=lambda target: sender, on_settled=lambda t, ns: settled.append([n.alert.subject for n in ns]),
        rand=lambda: 0.5,
    ), metrics  # fmt: skip


@asynccontextmanager
async def running(d: Delivery) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop), name="test-delivery")
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def count(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_full_queue_drops_its_oldest_with_a_metric_and_a_log_line() -> None:
    sender, settled = Script("block"), []
    d, metrics = delivery(sender, settled, queue_max=3)
    async with running(d):
        d.enqueue([note("first")])
        await asyncio.wait_for(sender.called.wait(), 10)  # "first" is in flight; the queue is empty
        with capture_logs() as logs:
            d.enqueue([note(f"n{i}") for i in range(5)])
        assert d.queued() == 3
        sender.release.set()
        await until(lambda: len(sender.sent) == 2)
    assert [e["event"] for e in logs] == ["alert_queue_full"] and logs[0]["dropped"] == 2
    assert logs[0]["target"] == LABEL
    assert count(metrics, "relayd_alert_notifications_dropped_total", target=LABEL) == 2
    assert settled[0] == ["n0", "n1"]  # dropped ones are settled at once, so the outbox forgets them
    assert "n2" in sender.sent[1].body and "n4" in sender.sent[1].body and "n1" not in sender.sent[1].body


async def test_failed_sends_are_retried_then_counted_sent() -> None:
    sender, settled = Script("fail", "crash", "ok"), []
    d, metrics = delivery(sender, settled)
    with capture_logs() as logs:
        async with running(d):
            d.enqueue([note("a")])
            await until(lambda: settled == [["a"]])
    assert len(sender.sent) == 1
    assert count(metrics, "relayd_alert_deliveries_total", target=LABEL, result="error") == 2
    assert count(metrics, "relayd_alert_deliveries_total", target=LABEL, result="sent") == 1
    failures = [e for e in logs if e["event"] == "alert_send_failed"]
    assert [e["attempt"] for e in failures] == [1, 2]
    assert failures[1]["error"] == "RuntimeError: plugin bug"
    assert all("secret-abcdef" not in str(e) for e in logs) and "***" in failures[0]["error"]


async def test_a_target_that_keeps_failing_is_given_up_and_the_worker_goes_on() -> None:
    sender, settled = Script("fail", "fail", "fail", "ok"), []
    d, metrics = delivery(sender, settled)
    async with running(d):
        d.enqueue([note("a")])
        await until(lambda: settled == [["a"]])
        d.enqueue([note("b")])
        await until(lambda: len(settled) == 2)
    assert count(metrics, "relayd_alert_deliveries_total", target=LABEL, result="gave_up") == 1
    assert [m.title for m in sender.sent] == ["[relayd relayd] OPENED critical: stream_down b"]


async def test_a_send_that_hangs_is_cut_by_its_timeout() -> None:
    sender, settled = Script("block", "ok"), []
    d, metrics = delivery(sender, settled, timeout_s=0.2)
    async with running(d):
        d.enqueue([note("a")])
        await until(lambda: settled == [["a"]])
    assert count(metrics, "relayd_alert_deliveries_total", target=LABEL, result="error") == 1
    assert len(sender.sent) == 1


async def test_stop_during_backoff_keeps_the_batch_owed() -> None:
    sender, settled = Script("fail"), []
    d, _ = delivery(sender, settled, backoff=Backoff(600.0, 2.0, 600.0))
    async with running(d):
        d.enqueue([note("a")])
        await asyncio.wait_for(sender.called.wait(), 10)
    assert settled == [] and d.queued() == 1


async def test_the_manager_evaluates_its_facts_source_on_its_own() -> None:
    sender = Script()
    clock = [1000.0]
    facts = AlertFacts(started_at=0.0, last_platform_success=None)  # never reached: platform_unreachable
    metrics = Metrics()
    manager = AlertManager(
        targets=[TARGET], state_store=MemoryAlertStateStore(), metrics=metrics, damping=Damping(0.0, 0.0),
        delivery=DeliveryPolicy(installation="t"), sender_factory=lambda target: sender,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop, facts=lambda: facts, clock=lambda: clock[0], interval_s=0.02))
    try:
        await until(lambda: len(sender.sent) == 1)
        assert [a.kind for a in manager.open_alerts()] == [AlertKind.PLATFORM_UNREACHABLE]
        open_gauge = {"kind": "platform_unreachable", "severity": "critical"}
        assert metrics.registry.get_sample_value("relayd_alerts_open", open_gauge) == 1
        facts = AlertFacts(started_at=0.0, last_platform_success=clock[0])
        await until(lambda: len(sender.sent) == 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert "RESOLVED: platform_unreachable installation" in sender.sent[1].title
    assert manager.open_alerts() == [] and manager.owed() == 0
    assert metrics.registry.get_sample_value("relayd_alerts_open", open_gauge) is None
