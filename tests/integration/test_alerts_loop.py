"""Bad alert targets slow nothing else: real Apprise ``json://`` sends to 127.0.0.1, a loop-lag ticker beside them.

Forty black-holed targets (they accept and never answer; the URLs ask Apprise for a 30 s read timeout), one that
refuses connections, one that answers 500 and one good target, every one sent to and retried at once. The good
target must get its message promptly, every bad one must be given up on after its attempts, and the event loop
must never be held long: a ticker records the longest gap between its 10 ms sleeps for the whole run.

Forty is more than any Apprise shared pool holds (at most 32 threads), so a design that sends through one pool
for every target would let the black-holed ones hold all its threads and the good target's message wait behind
them for their 30 s.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from relayd.alerts.delivery import Delivery, DeliveryError, DeliveryPolicy
from relayd.alerts.grouping import group
from relayd.alerts.model import Alert, AlertKind, Condition, Notification, Severity, Transition
from relayd.alerts.sender import SenderProcess
from relayd.alerts.targets import AlertTarget, unusable_targets
from relayd.backoff import Backoff
from relayd.metrics import Metrics
from tests.webhooks import webhook_receiver

TOKEN = "loop-3f9a1c7e2b"
BLACK_HOLED = 40
POLICY = DeliveryPolicy(installation="t", timeout_s=1.0, max_attempts=3, backoff=Backoff(0.05, 2.0, 0.2))
MAX_LAG_S = 0.2
GOOD_WITHIN_S = 10.0
"""Generous for a loaded machine, and still a third of the 30 s a black-holed target holds a shared thread."""


class LagTicker:
    """The longest gap between the wake-ups of ``asyncio.sleep(0.01)``, beyond the 10 ms asked for."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.ticks = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = loop.time()
            self.worst = max(self.worst, now - last - 0.01)
            self.ticks += 1
            last = now


@asynccontextmanager
async def ticking() -> AsyncIterator[LagTicker]:
    ticker, stop = LagTicker(), asyncio.Event()
    task = asyncio.create_task(ticker.run(stop), name="test-lag-ticker")
    try:
        yield ticker
    finally:
        stop.set()
        await task


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def note(subject: str) -> Notification:
    condition = Condition(AlertKind.SEGMENT_FAILING, subject, Severity.CRITICAL, "failing")
    return Notification(Transition.OPENED, Alert(condition, 1.0), 1.0)


async def test_black_holed_refusing_and_failing_targets_hold_neither_the_loop_nor_a_good_target() -> None:
    async with webhook_receiver(TOKEN) as rx:
        bad = [f"{rx.url('hang')}?rto=30&cto=30&n={i}" for i in range(BLACK_HOLED)]
        bad += [f"json://127.0.0.1:{closed_port()}/refused/{TOKEN}", rx.url("fail")]
        targets = [AlertTarget(url=u) for u in [*bad, rx.url("ok")]]
        # As in the daemon: the settings check loads Apprise's plugins before the loop serves anything.
        assert await asyncio.to_thread(unusable_targets, targets) == []
        settled: set[str] = set()
        all_settled = asyncio.Event()

        def on_settled(target: AlertTarget, notifications: object) -> None:
            settled.add(target.ident)
            if len(settled) == len(targets):
                all_settled.set()

        metrics = Metrics()
        delivery = Delivery(targets, metrics=metrics, policy=POLICY, on_settled=on_settled)
        stop = asyncio.Event()
        async with ticking() as ticker:
            runner = asyncio.create_task(delivery.run(stop), name="test-delivery")
            started = time.monotonic()
            try:
                delivery.enqueue([note(f"seg-{i}") for i in range(3)])
                good = await rx.wait_for("ok", 1, timeout=GOOD_WITHIN_S)
                await asyncio.wait_for(all_settled.wait(), 60)
            finally:
                stop.set()
                await asyncio.wait_for(runner, 10)
        black_holed = rx.got("hang")  # read before the receiver's exit releases the hung requests

    assert good[0]["_at"] - started < GOOD_WITHIN_S
    assert "3 alerts" in str(good[0]["title"])
    assert black_holed == []  # never answered: every one was a black hole to the end
    assert len(rx.got("fail")) == POLICY.max_attempts  # retried, then given up
    samples = metrics.alert_deliveries.collect()[0].samples
    gave_up = [s for s in samples if s.name.endswith("_total") and s.labels["result"] == "gave_up"]
    assert sum(s.value for s in gave_up) == len(bad)
    assert ticker.ticks > 50, "the ticker ran through the deliveries"
    assert ticker.worst < MAX_LAG_S, f"the event loop was held {ticker.worst * 1000:.0f} ms"


async def test_a_black_holed_send_ends_by_the_send_timeout_not_the_urls_longer_socket_timeout() -> None:
    """The URL asks for a 30 s read timeout; the sender process lowers it to its 1 s send timeout, so the thread a
    black hole holds there is free again (and the send reported failed) in about a second, not half a minute."""
    async with webhook_receiver(TOKEN) as rx:
        process = SenderProcess(timeout_s=1.0)
        sender = process.sender(AlertTarget(url=f"{rx.url('hang')}?rto=30&cto=30"))
        try:
            with pytest.raises(DeliveryError, match="did not accept"):  # a TimeoutError if it waited out the 30 s
                await asyncio.wait_for(sender(group([note("seg-0")], installation="t")), GOOD_WITHIN_S)
        finally:
            await process.stop()
