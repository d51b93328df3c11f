"""Server-sent events for open consoles: which schedules changed, within a second of the store committing it.

Why a counter, a journal and one timer: the store counts its commits and notes the schedule of every segment write
in a bounded journal (``relayd.store.journal``), so noticing what moved costs the callback path nothing but an
append — no hook, no per-client work. One task (``ChangeFeed``) looks once per ``interval_s`` while at least one
console is connected (it does not exist otherwise) and publishes one ``Signal``: the schedules whose segments
changed (none when only the event history moved), and whether the overview (config problems, open alerts, the set
of schedules) changed too. Each stream
writes it as ``event: changed`` with ``{"schedules": [...], "overview": bool}``; the page then re-reads only those
schedules (``/v1/schedules?segments=brief&id=…``), or everything when ``overview`` is set — the same source as
``relayd status``. A stream that fell behind the feed's short memory is told ``overview`` (read everything).
A comment line every ``heartbeat_s`` keeps proxies from closing idle streams and lets the browser notice a dead
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from aiohttp import web

from relayd.ids import ScheduleId
from relayd.store.journal import ChangeJournal
from relayd.web.alerts import AlertsProvider
from relayd.web.views import DaemonView

log = structlog.get_logger("relayd.web.console")

KEEP_SIGNALS = 32
MAX_IDS = 200
"""More changed schedules than this in one signal: the page reads everything instead (one request, not many)."""


@dataclass(frozen=True, slots=True)
class Signal:
    seq: int
    schedules: frozenset[ScheduleId]
    overview: bool


def merge(signals: Iterable[Signal], seq: int) -> Signal:
    """Several signals (published after ``seq``) as one: a stream that missed a tick or two."""
    ids: set[ScheduleId] = set()
    overview = False
    for signal in signals:
        ids |= signal.schedules
        overview = overview or signal.overview
        seq = max(seq, signal.seq)
    return Signal(seq, frozenset(ids), overview or len(ids) > MAX_IDS)


def signal_data(signal: Signal) -> bytes:
    ids = [] if signal.overview else sorted(signal.schedules)
    body = json.dumps({"schedules": ids, "overview": signal.overview}, separators=(",", ":"))
    return b"event: changed\ndata: " + body.encode() + b"\n\n"


def overview_of(view: DaemonView, alerts: AlertsProvider) -> Callable[[], object]:
    """What the timeline shows beyond segments — the declared schedules, config problems and warnings, open alerts,
    removals held by the guard, installation conflicts — as one comparable value: when it differs from the last
    look, the page reads everything."""

    def key() -> object:
        opened = tuple((a.condition.kind, a.condition.subject, a.opened_at) for a in alerts())
        config = tuple(view.config_problems()), tuple(view.config_warnings())
        return tuple(view.schedules()), config, opened, tuple(view.held_removals()), tuple(view.conflicts())

    return key


class ChangeFeed:
    """Watches the store's commit counter on one timer and publishes what changed to every waiting stream."""

    def __init__(
        self,
        version: Callable[[], int],
        journal: ChangeJournal,
        overview: Callable[[], object] = lambda: None,
        *,
        interval_s: float = 0.5,
        heartbeat_s: float = 15.0,
    ) -> None:
        self._version = version
        self._journal = journal
        self._overview = overview
        self._interval = interval_s
        self.heartbeat_s = heartbeat_s
        self._changed = asyncio.Event()
        self._signals: deque[Signal] = deque(maxlen=KEEP_SIGNALS)
        self._seq = 0
        self._closing = False
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> int:
        return self._listeners

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def closing(self) -> bool:
        return self._closing

    async def wait(self, within_s: float) -> bool:
        """True when a change arrived within ``within_s``; False on a quiet heartbeat period or when closing."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), within_s)
        except TimeoutError:
            return False
        return not self._closing

    def after(self, seq: int) -> Signal:
        """Everything published after ``seq``, as one signal (``overview`` when some of it is forgotten)."""
        if self._seq - seq > len(self._signals):
            return Signal(self._seq, frozenset(), True)
        return merge((s for s in self._signals if s.seq > seq), seq)

    def join(self) -> None:
        self._listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="relayd-console-feed")

    def leave(self) -> None:
        self._listeners -= 1

    async def close(self) -> None:
        """Wake every stream so it ends, and stop the timer (the server is shutting down)."""
        self._closing = True
        self._changed.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        seen, position, overview = self._version(), self._journal.seq, self._overview()
        while self._listeners > 0 and not self._closing:
            await asyncio.sleep(self._interval)  # the one timer: a sampling period, not synchronisation
            current = self._version()
            if current == seen:
                continue
            seen = current
            ids = self._journal.since(position)
            position = self._journal.seq
            latest = self._overview()
            moved = ids is None or latest != overview
            overview = latest
            self._publish(ids or frozenset(), moved)  # even with no ids: the event history moved

    def _publish(self, ids: frozenset[ScheduleId], overview: bool) -> None:
        self._seq += 1
        self._signals.append(Signal(self._seq, ids, overview))
        self._changed.set()
        self._changed = asyncio.Event()  # streams waiting on the old one wake; later waits start fresh


class EventStream:
    """``GET /v1/stream``: ``event: changed`` with what moved, ``: ping`` otherwise."""

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        self._feed.join()
        try:
            await response.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
            await self._pump(response)
        except ConnectionResetError:
            pass  # the browser went away; it reconnects by itself
        finally:
            self._feed.leave()
        return response

    async def _pump(self, response: web.StreamResponse) -> None:
        seen = self._feed.seq
        while not self._feed.closing:
            changed = await self._feed.wait(self._feed.heartbeat_s)
            if self._feed.closing:
                return
            if not changed:
                await response.write(b": ping\n\n")
                continue
            signal = self._feed.after(seen)
            seen = signal.seq
            await response.write(signal_data(signal))
