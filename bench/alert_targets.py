"""Alert targets that hang or fail must delay nothing else: a background for ``bench/callbacks.py``.

``run(store, stop)`` runs the synthetic 10,000-schedule reconcile of ``bench/callbacks.py`` *and*, beside it, the real
``AlertManager`` with three Apprise ``json://`` targets, served by a process of their own (``bench/alert_sink.py``:
a real target is remote, so serving them must cost this loop nothing): one that answers 200, one that answers 500,
one that never answers. Every second it evaluates 200 failing segments plus one condition that flaps, so every
target is sent to all the time (openings and resolutions), the bad ones retried with backoff.

Compare the callback p99 of::

    .venv/bin/python bench/callbacks.py --seconds 10                                      # without alerting
    .venv/bin/python bench/callbacks.py --seconds 10 --background bench.alert_targets:run  # with the bad targets
    .venv/bin/python bench/callbacks.py --seconds 10 --background bench.alert_targets:run_good_only

and the loop lag and reconcile writes/s the runs print. The third runs the same alerting with the good target alone:
against the second it isolates what the hanging and failing targets cost. Target: the p99 moves by no more than the
run-to-run noise (a few ms), and the good target still receives every message (printed at the end).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bench.callbacks import bench_segment, synthetic_reconcile
from relayd.alerts.conditions import AlertFacts
from relayd.alerts.decide import Damping
from relayd.alerts.delivery import DeliveryPolicy
from relayd.alerts.manager import AlertManager
from relayd.alerts.state import MetaAlertStateStore
from relayd.alerts.targets import AlertTarget, unusable_targets
from relayd.metrics import Metrics
from relayd.store import SegmentRecord, SegmentState, Store

ROOT = Path(__file__).resolve().parent.parent


def _failed(i: int, now: float) -> SegmentRecord:
    return dataclasses.replace(bench_segment(i, now - 600, "alerting"), state=SegmentState.FAILED, attempts=8)


def _facts(tick: int, now: float) -> AlertFacts:
    """200 failing segments, and a 201st present for two ticks of every four: it opens on the second (it has held
    longer than the damping) and resolves on the fourth, so there is an opening or a resolution every 2 s."""
    segments = [_failed(i, now) for i in range(200 + (tick // 2) % 2)]
    return AlertFacts(segments=segments, started_at=now - 3600, last_platform_success=now)


async def run_good_only(store: Store, stop: asyncio.Event) -> None:
    """The same alerting with the good target alone: against ``run`` it isolates what the bad targets cost."""
    await run(store, stop, kinds=("ok",))


async def run(store: Store, stop: asyncio.Event, kinds: tuple[str, ...] = ("ok", "fail", "hang")) -> None:
    base = f"127.0.0.1:{SINK_PORT}"
    targets = [AlertTarget(url=f"json://{base}/{kind}/hook") for kind in kinds]
    manager = AlertManager(
        targets=targets,
        state_store=MetaAlertStateStore(store),
        metrics=Metrics(),
        damping=Damping(0.5, 0.5),
        delivery=DeliveryPolicy(installation="bench", timeout_s=2.0, max_attempts=3),
    )
    before = await _received(base)
    delivery = asyncio.create_task(manager.run(stop), name="bench-alert-delivery")
    reconcile = asyncio.create_task(synthetic_reconcile(store, stop), name="bench-reconcile")
    tick = 0
    try:
        while not stop.is_set():
            await manager.evaluate(_facts(tick, time.time()), time.time())
            tick += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await asyncio.gather(delivery, reconcile, return_exceptions=True)
        received = await _received(base) - before
        print(f"alert targets     : the good target received {received} messages during the run")


async def _received(base: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"http://{base}/count") as answer:
        return int(await answer.text())


def _start_sink() -> int:
    """Start the targets' process; its port. Done at import, as the daemon's own preparation is done before its loop
    serves anything: the sink's start and Apprise's plugin loading (half a second of imports, which on a thread
    beside the loop would hold the GIL) are not what this benchmark measures."""
    sink = subprocess.Popen([sys.executable, "-m", "bench.alert_sink"], cwd=ROOT, stdout=subprocess.PIPE)
    atexit.register(sink.kill)
    assert sink.stdout is not None
    port = int(sink.stdout.readline())
    unusable_targets([AlertTarget(url=f"json://127.0.0.1:{port}/ok/hook")])
    return port


SINK_PORT = _start_sink()
