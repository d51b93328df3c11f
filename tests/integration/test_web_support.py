"""Shared helpers for the web tests: a daemon-view fake, a store factory, and an app-on-a-free-port harness.

The store is the real ``relayd.store.Store`` on a temporary path when it is importable, else an in-memory fake
with the same shape (``segment``, ``segments``, ``by_task_id``, ``add_event``, ``events``, ``healthy``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.metrics import Metrics
from relayd.store.records import Event, SegmentRecord, SegmentState
from relayd.web.app import WebServer, build_app
from relayd.web.notices import CallbackNotice
from relayd.web.views import NextAction, ScheduleInfo

SECRET = b"test-callback-secret-0123456789"
TOKEN = "test-api-token"
NOW = 1_800_000_000.0


class FakeStore:
    """In-memory stand-in with the Store's read/write shape."""

    def __init__(self) -> None:
        self.healthy = True
        self._segments: dict[SegmentKey, SegmentRecord] = {}
        self._events: list[Event] = []
        self._dedupe: set[str] = set()

    async def put(self, seg: SegmentRecord) -> None:
        self._segments[seg.key] = seg

    def segment(self, key: SegmentKey) -> SegmentRecord | None:
        return self._segments.get(key)

    def segments(self, schedule_id: ScheduleId | None = None, include_deleted: bool = False) -> list[SegmentRecord]:
        return [
            s
            for s in self._segments.values()
            if (schedule_id is None or s.schedule_id == schedule_id)
            and (include_deleted or s.state is not SegmentState.DELETED)
        ]

    def by_task_id(self, task_id: TaskId) -> SegmentRecord | None:
        return next((s for s in self._segments.values() if s.task_id == task_id), None)

    async def add_event(self, event: Event) -> bool:
        if event.dedupe_key is not None:
            if event.dedupe_key in self._dedupe:
                return False
            self._dedupe.add(event.dedupe_key)
        self._events.append(dataclasses.replace(event, id=len(self._events) + 1))
        return True

    async def events(
        self,
        *,
        schedule_id: ScheduleId | None = None,
        segment_key: SegmentKey | None = None,
        kind: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[Event]:
        out = [
            e
            for e in reversed(self._events)
            if (schedule_id is None or e.schedule_id == schedule_id)
            and (segment_key is None or e.segment_key == segment_key)
            and (kind is None or e.kind == kind)
            and (before_id is None or (e.id or 0) < before_id)
        ]
        return out[:limit]

    async def close(self) -> None:
        return None


@dataclass
class FakeView:
    """A DaemonView with settable answers."""

    clock: float = NOW
    infos: list[ScheduleInfo] = field(default_factory=list)
    actions: dict[SegmentKey, NextAction] = field(default_factory=dict)
    loaded: bool = True
    problems: list[str] = field(default_factory=list)
    last_ok: float | None = NOW
    error: str | None = None
    fail_with: Exception | None = None

    def schedules(self) -> Sequence[ScheduleInfo]:
        if self.fail_with is not None:
            raise self.fail_with
        return self.infos

    def next_action(self, key: SegmentKey) -> NextAction | None:
        return self.actions.get(key)

    def config_loaded(self) -> bool:
        return self.loaded

    def config_problems(self) -> Sequence[str]:
        return self.problems

    def last_platform_success(self) -> float | None:
        return self.last_ok

    def platform_error(self) -> str | None:
        return self.error

    def now(self) -> float:
        return self.clock


def segment(sid: str, index: int, start: float, end: float, **changes: Any) -> SegmentRecord:
    base = SegmentRecord(
        key=SegmentKey(f"{sid}-{index}"),
        schedule_id=ScheduleId(sid),
        index=index,
        occurrence=None,
        start=int(start),
        end=int(end),
        title=f"rd{sid}{index}",
        group=None,
        spec_hash="h",
        body={},
    )
    return dataclasses.replace(base, **changes)


async def open_store(tmp_path: Path) -> Any:
    """The real Store when it has landed, else the fake."""
    try:
        from relayd.store import Store  # type: ignore[attr-defined]  # noqa: PLC0415 - until the store lands
    except ImportError:
        return FakeStore()
    return await Store.open(tmp_path / "state.db")


async def put_segment(store: Any, seg: SegmentRecord) -> None:
    await store.put(seg)


@dataclass
class Harness:
    """A running app on a free port with its collaborators."""

    store: Any
    view: FakeView
    metrics: Metrics
    server: WebServer
    session: aiohttp.ClientSession
    base: str
    hints: list[tuple[ScheduleId, SegmentKey, CallbackNotice]]

    def url(self, path: str) -> str:
        return self.base + path

    async def close(self) -> None:
        await self.session.close()
        await self.server.stop()
        await self.store.close()


async def start_harness(store: Any, *, view: FakeView | None = None, **app_kwargs: Any) -> Harness:
    view = view or FakeView()
    metrics = Metrics()
    hints: list[tuple[ScheduleId, SegmentKey, CallbackNotice]] = []
    kwargs: dict[str, Any] = {"callback_secret": SECRET, "api_token": TOKEN, **app_kwargs}
    app = build_app(store=store, view=view, metrics=metrics, hint=lambda *a: hints.append(a), **kwargs)
    server = WebServer(app, shutdown_timeout=1.0)
    port = await server.start("127.0.0.1", 0)
    session = aiohttp.ClientSession()
    return Harness(store, view, metrics, server, session, f"http://127.0.0.1:{port}", hints)
