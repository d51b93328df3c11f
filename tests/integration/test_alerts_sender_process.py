"""The alert sender process on real sockets: Apprise ``json://`` sends from a child process to 127.0.0.1.

What it promises: sends reach a good target; a hanging target holds only its own thread (a good target's send at
the same moment is answered at once); a 500 is a DeliveryError; a killed child fails what it held and the next send
starts another; no URL secret reaches the child's command line, its environment or any log line; stopping leaves
no child behind.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relayd.alerts import sender_child
from relayd.alerts.delivery import Delivery, DeliveryError, DeliveryPolicy
from relayd.alerts.grouping import Message, group
from relayd.alerts.model import Alert, AlertKind, Condition, Notification, Severity, Transition
from relayd.alerts.sender import STOP_GRACE_S, SenderProcess
from relayd.alerts.targets import AlertTarget
from relayd.backoff import Backoff
from relayd.logs import configure_logging
from relayd.metrics import Metrics
from tests.webhooks import Receiver, webhook_receiver

TOKEN = "proc-5e8d2c1a9b7f3d60"
WITHIN_S = 15.0
"""Generous for a loaded machine: a send that takes this long has waited for something it should not."""
CALLER_TIMEOUT_S = 4.0
HELD = "?rto=60&cto=60"
"""Asks Apprise for 60 s socket timeouts, so a hung send is ended by the caller (or the test), not by the socket."""


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    async with webhook_receiver(TOKEN) as receiver:
        yield receiver


def message(subject: str) -> Message:
    condition = Condition(AlertKind.SEGMENT_FAILING, subject, Severity.CRITICAL, "failing")
    return group([Notification(Transition.OPENED, Alert(condition, 1.0), 1.0)], installation="t")


def sender_children() -> list[int]:
    """Pids of this test process's children that run the alert sender script."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and Path(sender_child.__file__).name.encode() in cmdline:
            found.append(int(entry))
    return found


def captured_logs() -> io.StringIO:
    """Every log line from here on, unredacted: no secret is given to the redactor, so none may be logged at all."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    return stream


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_sends_reach_a_good_target_from_one_child_started_by_the_first_send(rx: Receiver) -> None:
    process = SenderProcess(timeout_s=5.0)
    good = process.sender(AlertTarget(url=rx.url("ok")))
    other = process.sender(AlertTarget(url=rx.url("other")))
    assert process.pid is None and sender_children() == []  # nothing started before a send
    try:
        await asyncio.wait_for(good(message("seg-1")), WITHIN_S)
        first = process.pid
        await asyncio.wait_for(other(message("seg-2")), WITHIN_S)
        assert sender_children() == [first] and first != os.getpid()  # one child for every target
    finally:
        await process.stop()
    assert "OPENED critical: segment_failing seg-1" in rx.titles("ok")[0]
    assert "seg-2" in rx.titles("other")[0]
    assert sender_children() == []


async def test_a_hanging_target_times_out_while_a_good_targets_send_at_the_same_moment_succeeds(
    rx: Receiver,
) -> None:
    process = SenderProcess(timeout_s=60.0)  # the hung send's thread outlives the caller's wait
    hang = process.sender(AlertTarget(url=rx.url("hang") + HELD))
    good = process.sender(AlertTarget(url=rx.url("ok")))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(good(message("warm")), WITHIN_S)  # the child is up
        hung = asyncio.create_task(asyncio.wait_for(hang(message("seg-h")), CALLER_TIMEOUT_S), name="test-hung")
        await rx.wait_hanging(1)  # held at the receiver: the hanging target's thread is busy
        started = loop.time()
        await asyncio.wait_for(good(message("seg-g")), WITHIN_S)
        good_took = loop.time() - started
        hang_pending = not hung.done()
        with pytest.raises(TimeoutError):
            await hung
        rx.release.set()  # the hung send completes in the child; its late reply is dropped
        await asyncio.wait_for(hang(message("seg-h2")), WITHIN_S)  # the next request gets its own answer
    finally:
        await process.stop()
    assert hang_pending, "the good target's send waited for the hanging one"
    assert good_took < CALLER_TIMEOUT_S
    assert "seg-g" in rx.titles("ok")[1]
    assert any("seg-h2" in t for t in rx.titles("hang"))


async def test_a_target_answering_500_gives_a_delivery_error_without_the_urls_secret(rx: Receiver) -> None:
    process = SenderProcess(timeout_s=5.0)
    failing = process.sender(AlertTarget(url=f"{rx.url('fail')}?secret={TOKEN}x"))
    try:
        with pytest.raises(DeliveryError) as raised:
            await asyncio.wait_for(failing(message("seg-f")), WITHIN_S)
    finally:
        await process.stop()
    assert "did not accept" in str(raised.value)
    assert "500" in str(raised.value)  # Apprise's own reason, quoted
    assert TOKEN not in str(raised.value)
    assert len(rx.got("fail")) == 1


async def test_a_killed_child_fails_the_send_it_held_and_the_next_send_starts_another(rx: Receiver) -> None:
    logs = captured_logs()
    process = SenderProcess(timeout_s=60.0)
    hang = process.sender(AlertTarget(url=rx.url("hang") + HELD))
    good = process.sender(AlertTarget(url=rx.url("ok")))
    try:
        in_flight = asyncio.create_task(hang(message("seg-k")), name="test-in-flight")
        await rx.wait_hanging(1)
        first = process.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        with pytest.raises(DeliveryError, match=r"the alert sender process ended \(signal 9\); sending again"):
            await asyncio.wait_for(in_flight, WITHIN_S)
        await asyncio.wait_for(good(message("seg-after")), WITHIN_S)
        second = process.pid
    finally:
        await process.stop()
    assert second is not None and second != first
    assert process.restarts == 1
    assert "seg-after" in rx.titles("ok")[0]
    ended = [e for e in events(logs) if e["event"] == "alert_sender_process_ended"]
    assert len(ended) == 1 and ended[0]["how"] == "signal 9" and ended[0]["in_flight"] == 1
    assert TOKEN not in logs.getvalue()


async def test_no_secret_reaches_the_childs_command_line_environment_or_any_log_line(rx: Receiver) -> None:
    logs = captured_logs()
    process = SenderProcess(timeout_s=5.0)
    targets = [rx.url("ok"), rx.url("fail"), f"json://user:{TOKEN}pw@127.0.0.1:1/refused/{TOKEN}"]
    senders = [process.sender(AlertTarget(url=u)) for u in targets]
    try:
        results = await asyncio.gather(*(asyncio.wait_for(s(message("seg-s")), WITHIN_S) for s in senders),
                                       return_exceptions=True)  # fmt: skip
        assert process.pid is not None
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
    finally:
        await process.stop()
    assert results[0] is None and all(isinstance(r, DeliveryError) for r in results[1:])
    assert sender_child.__file__.encode() in cmdline  # the right process was read
    assert TOKEN.encode() not in cmdline and TOKEN.encode() not in environ
    errors = " ".join(str(r) for r in results)
    assert TOKEN not in logs.getvalue() and TOKEN not in errors


async def test_a_child_that_cannot_start_fails_sends_and_is_started_again_after_a_growing_delay(
    rx: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = captured_logs()
    broken = tmp_path / "broken_child.py"
    broken.write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(sender_child, "__file__", str(broken))
    process = SenderProcess(timeout_s=5.0)
    good = process.sender(AlertTarget(url=rx.url("ok")))
    try:
        for _ in range(2):
            with pytest.raises(DeliveryError, match=r"could not start \(it exited at start\)"):
                await asyncio.wait_for(good(message("seg-b")), WITHIN_S)
    finally:
        await process.stop()
    failed = [e for e in events(logs) if e["event"] == "alert_sender_process_start_failed"]
    assert [e["next_start_after_s"] for e in failed] == [0.5, 1.0]
    assert rx.got("ok") == [] and sender_children() == []


async def test_stopping_with_a_send_hanging_ends_the_child_at_once_and_fails_that_send(rx: Receiver) -> None:
    process = SenderProcess(timeout_s=60.0)
    hang = process.sender(AlertTarget(url=rx.url("hang") + HELD))
    in_flight = asyncio.create_task(hang(message("seg-x")), name="test-in-flight")
    try:
        await rx.wait_hanging(1)
        assert sender_children() == [process.pid]
    finally:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await process.stop()
        stop_took = loop.time() - started
    with pytest.raises(DeliveryError, match="the alert sender process was stopped"):
        await asyncio.wait_for(in_flight, WITHIN_S)
    assert sender_children() == []
    assert stop_took < STOP_GRACE_S, "the child did not exit when its stdin closed (it was killed after the grace)"


async def test_a_delivery_that_ends_stops_its_child(rx: Receiver) -> None:
    policy = DeliveryPolicy(installation="t", timeout_s=10.0, max_attempts=1, backoff=Backoff(0.05, 2.0, 0.2))
    delivery = Delivery([AlertTarget(url=rx.url("ok"))], metrics=Metrics(), policy=policy)
    stop = asyncio.Event()
    runner = asyncio.create_task(delivery.run(stop), name="test-delivery")
    try:
        delivery.enqueue([Notification(Transition.OPENED, Alert(Condition(
            AlertKind.SEGMENT_FAILING, "seg-d", Severity.CRITICAL, "failing"), 1.0), 1.0)])  # fmt: skip
        await rx.wait_for("ok", 1, timeout=WITHIN_S)
        assert len(sender_children()) == 1
    finally:
        stop.set()
        await asyncio.wait_for(runner, WITHIN_S)
    assert sender_children() == []
