"""Shared helpers for the web tests: a daemon-view fake, the real Store on a temp path, and an app-on-a-free-port
harness. (Named test_* so it may live among the web test files; it holds no tests.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from relayd.ids import ScheduleId, SegmentKey
from relayd.metrics import Metrics
from relayd.store import SegmentRecord, Store
from relayd.volc.models import TaskStatus
from relayd.web.app import WebServer, build_app
from relayd.web.notices import CallbackNotice
from relayd.web.views import DaemonPlan, NextAction, ScheduleInfo, SegmentNotes

SECRET = b"test-callback-secret-0123456789"
TOKEN = "test-api-token"
NOW = 1_800_000_000.0


@dataclass
class FakeView:
    """A DaemonView with settable answers."""

    clock: float = NOW
    infos: list[ScheduleInfo] = field(default_factory=list)
    actions: dict[SegmentKey, NextAction] = field(default_factory=dict)
    loaded: bool = True
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    held: list[ScheduleId] = field(default_factory=list)
    last_ok: float | None = NOW
    error: str | None = None
    fail_with: Exception | None = None
    started: bool = True
    health: dict[ScheduleId, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[SegmentKey, TaskStatus] = field(default_factory=dict)
    plans: dict[ScheduleId, DaemonPlan] = field(default_factory=dict)

    def ready(self) -> bool:
        """Whether the daemon finished starting (its first reconcile pass); passed to the app as ``started``."""
        return self.started

    def schedules(self) -> Sequence[ScheduleInfo]:
        if self.fail_with is not None:
            raise self.fail_with
        return self.infos

    def segment_notes(self, key: SegmentKey) -> SegmentNotes:
        return SegmentNotes()

    def next_action(self, key: SegmentKey) -> NextAction | None:
        return self.actions.get(key)

    def config_loaded(self) -> bool:
        return self.loaded

    def config_problems(self) -> Sequence[str]:
        return self.problems

    def stream_health(self, schedule_id: ScheduleId) -> dict[str, Any] | None:
        return self.health.get(schedule_id)

    def config_warnings(self) -> Sequence[str]:
        return self.warnings

    def held_removals(self) -> Sequence[ScheduleId]:
        return self.held

    def conflicts(self) -> Sequence[str]:
        return ()

    def last_platform_success(self) -> float | None:
        return self.last_ok

    def platform_error(self) -> str | None:
        return self.error

    def now(self) -> float:
        return self.clock

    def platform_status(self, key: SegmentKey) -> TaskStatus | None:
        return self.statuses.get(key)

    def plan_now(self, schedule_id: ScheduleId) -> DaemonPlan | None:
        return self.plans.get(schedule_id)


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


async def open_store(tmp_path: Path) -> Store:
    return await Store.open(tmp_path / "state.db")


async def put_segment(store: Store, seg: SegmentRecord) -> None:
    await store.put(seg)


@dataclass
class Harness:
    """A running app on a free port with its collaborators."""

    store: Store
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


async def serve(
    store: Store, view: FakeView, *, port: int = 0, hint: Callable[..., None] = lambda *a: None, **app_kwargs: Any
) -> tuple[WebServer, Metrics, int]:
    """The real app over ``store`` and ``view``, served on 127.0.0.1:``port`` (0: a free one); its port."""
    metrics = Metrics()
    kwargs: dict[str, Any] = {"callback_secret": SECRET, "api_token": TOKEN, **app_kwargs}
    if "started" not in kwargs:  # a view of another kind (the benchmarks') says it with ``started``
        kwargs["started"] = view.ready
    app = build_app(store=store, view=view, metrics=metrics, hint=hint, **kwargs)
    server = WebServer(app, shutdown_timeout=1.0)
    return server, metrics, await server.start("127.0.0.1", port)


async def start_harness(store: Store, *, view: FakeView | None = None, **app_kwargs: Any) -> Harness:
    view = view or FakeView()
    hints: list[tuple[ScheduleId, SegmentKey, CallbackNotice]] = []
    server, metrics, port = await serve(store, view, hint=lambda *a: hints.append(a), **app_kwargs)
    session = aiohttp.ClientSession()
    return Harness(store, view, metrics, server, session, f"http://127.0.0.1:{port}", hints)
