"""Fixtures for the console's browser tests: one daemon against one emulator, one fake-actions app, one Chromium —
shared by the whole module so the suite stays well under a minute."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from relayd.alerts.model import Alert, AlertKind, Condition, Severity
from relayd.daemon import Daemon
from relayd.emulator import Emulator, EmulatorConfig
from relayd.ids import GroupName, ScheduleId, SegmentKey
from relayd.store import SegmentState
from relayd.web.app import WebServer
from relayd.web.views import ScheduleInfo
from tests.browser.harness import LoopThread, chromium
from tests.e2e.harness import live_schedule, running_daemon, settings_for, write_schedules
from tests.integration.test_web_support import FakeView, Harness, open_store, segment, serve, start_harness

TOKEN = "browser-test-token"
PUSH = "rtmp://push.test/live"  # where tests.e2e.harness.live_schedule pushes
NOWHERE = PUSH + "/nobody-pushes-this"  # its playback answers 404: the health check cannot tell (unknown)
FAKE_WARNING = "schedules/g.toml:3: schedule[g]: two schedules push rtmp://push.test/live/same"


def health(url: str) -> str:
    """A schedule's health check of ``url`` (the emulator's HLS playback), quick enough for a test."""
    return f'health = {{ url = "{url}", stall_after = "5s", interval = "2s", grace = "2s" }}'


@dataclass
class Live:
    """The real daemon and emulator, driven from the test thread through ``loop``."""

    loop: LoopThread
    emu: Emulator
    daemon: Daemon
    base: str
    start: float


@dataclass
class FakeActions:
    retried: list[SegmentKey] = field(default_factory=list)
    released: int = 0

    async def retry_now(self, key: SegmentKey) -> bool:
        self.retried.append(key)
        return True

    async def release_removals(self) -> Sequence[ScheduleId]:
        self.released += 1
        return [ScheduleId("gone")]


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@contextlib.contextmanager
def serving(
    loop_thread: LoopThread, workdir: Path, write: Callable[[Emulator, int], None], **overrides: Any
) -> Iterator[Live]:
    """An emulator (20 s task cap) and the real daemon on ``loop_thread``, with the schedules ``write`` puts in
    ``workdir`` (given the emulator and the start second)."""
    stop: asyncio.Event | None = None
    ready: concurrent.futures.Future[tuple[Emulator, Daemon]] = concurrent.futures.Future()
    start = time.time()

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        emu = Emulator(EmulatorConfig(max_task_seconds=20, admin=True, callback_retry_delay_s=0.2))
        await emu.start("127.0.0.1", 0)
        write(emu, int(start))
        settings = settings_for(emu, workdir, max_task_seconds=20, horizon=3600, api_token=TOKEN, **overrides)
        try:
            async with running_daemon(settings) as daemon:
                ready.set_result((emu, daemon))
                await stop.wait()
        finally:
            await emu.stop()

    served = asyncio.run_coroutine_threadsafe(serve(), loop_thread.loop)
    try:
        emu, daemon = ready.result(90)
    except BaseException:
        if served.done():
            served.result()
        raise
    try:
        yield Live(loop_thread, emu, daemon, f"http://127.0.0.1:{daemon.port}", start)
    finally:
        loop_thread.loop.call_soon_threadsafe(lambda: stop.set() if stop is not None else None)
        served.result(60)


@pytest.fixture(scope="module")
def live(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """alpha: 60 s, three chained 20 s tasks (hand-offs 23 s and 43 s in); beta: relaying for 2 min; gamma: later.
    beta's health check watches its own playback (up); alpha's watches a destination nobody pushes (unknown)."""
    workdir = tmp_path_factory.mktemp("console-live")

    def write(emu: Emulator, now: int) -> None:
        write_schedules(
            workdir,
            live_schedule("alpha", now + 3, now + 63, extra=health(emu.playback_url(NOWHERE)))
            + live_schedule("beta", now, now + 120, extra=health(emu.playback_url(f"{PUSH}/beta")))
            + live_schedule("gamma", now + 600, now + 660),
        )

    # One restart attempt: a segment that fails twice in a row is failed (for "retry now") within seconds.
    with serving(loop_thread, workdir, write, restart_max_attempts=1) as served:
        yield served


GUARDED = ("r1", "r2", "r3", "r4", "r5")


@pytest.fixture
def guarded(loop_thread: LoopThread, tmp_path: Path) -> Iterator[Live]:
    """A second daemon whose five schedules (one file each) relay now: removing them all is more than the removal
    guard lets through (``max_removals`` 3), so it holds them."""

    def write(emu: Emulator, now: int) -> None:
        for sid in GUARDED:
            write_schedules(tmp_path, live_schedule(sid, now, now + 600), name=f"{sid}.toml")

    with serving(loop_thread, tmp_path, write) as served:
        yield served


@pytest.fixture(scope="module")
def fake(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, FakeActions]]:
    """An app with the real store and status API, a fake daemon view and fake actions: one failing segment, and
    one schedule whose only segment is deleted history, a gap in a chain and an overlap on a destination."""
    workdir = tmp_path_factory.mktemp("console-fake")
    actions = FakeActions()

    async def begin() -> Harness:
        store = await open_store(workdir)
        now = time.time()
        await store.put(segment("a", 0, now - 600, now - 60, state=SegmentState.ENDED, task_id="t0"))
        await store.put(
            segment("a", 1, now - 60, now + 600, state=SegmentState.RETRYING, task_id="t1", last_error="Boom",
                    last_request_id="req-1", attempts=2)
        )  # fmt: skip
        # h: its only segment ended two hours ago and retention deleted its task — history the timeline still draws.
        await store.put(segment("h", 0, now - 3 * 3600, now - 2 * 3600, state=SegmentState.DELETED, task_id="th"))
        # g: a gap between its two segments; o and p: two schedules pushing one destination, overlapping.
        await store.put(segment("g", 0, now - 900, now - 300, state=SegmentState.ENDED))
        await store.put(segment("g", 1, now + 300, now + 900))
        same = {"state": SegmentState.SCHEDULED, "body": {"DstAddr": "rtmp://push.test/live/same"}}
        await store.put(segment("o", 0, now - 600, now + 1200, **same))
        await store.put(segment("p", 0, now + 600, now + 2400, **same))
        infos = [
            ScheduleInfo(ScheduleId("a"), title="Fake A"),
            ScheduleInfo(ScheduleId("h"), title="History", group=GroupName("archive")),
        ]
        view = FakeView(
            clock=now, infos=infos, held=[ScheduleId("gone")], warnings=[FAKE_WARNING],
            health={ScheduleId("a"): {"health": "stalled", "text": "stalled since 12:00:00Z"}},
        )  # fmt: skip
        alert = Alert(Condition(AlertKind.SEGMENT_FAILING, "a", Severity.CRITICAL, "a-1 keeps failing"), now - 300)
        return await start_harness(store, view=view, actions=actions, api_token=TOKEN, alerts=lambda: [alert])

    harness = loop_thread.run(begin())
    yield harness, actions
    loop_thread.run(harness.close())


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    browser = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.quit()


def run_on(live: Live, fn: Any) -> Any:
    return live.loop.call(fn)


async def serve_again(harness: Harness) -> WebServer:
    """A fresh app over the harness's store and view on the harness's port: the daemon back after an outage."""
    server, _, _ = await serve(harness.store, harness.view, port=int(harness.base.rsplit(":", 1)[1]), api_token=TOKEN)
    return server
