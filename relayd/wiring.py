"""Building the daemon's parts from its settings, in the order they depend on each other.

Each resource is entered into the daemon's ``AsyncExitStack`` as it is built, so it is closed in reverse order on
the way out: store (and its single-instance lock), HTTP client session and signed client, scheduler, HTTP server.
The daemon (``relayd.daemon``) only runs the lifecycle over what this returns.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp
import structlog

from relayd.actions import DaemonActions
from relayd.alerts.manager import AlertManager
from relayd.configuration import Configuration
from relayd.engine import Engine, engine_config, outcome_metrics
from relayd.groups import sync_groups
from relayd.ids import ScheduleId
from relayd.jobs import Jobs, build_scheduler
from relayd.metrics import Metrics
from relayd.noticing import Notices
from relayd.platform import Platform
from relayd.platform.live import LivePlatform
from relayd.queueing import ReconcileQueue
from relayd.settings import Settings
from relayd.statusview import StatusView
from relayd.store import SharedStore
from relayd.store.opening import open_store
from relayd.volc.client import LiveClient
from relayd.web.app import WebServer, build_app, parse_listen
from relayd.web.auth import ensure_token_file, token_file
from relayd.web.connections import HttpLimits
from relayd.web.signing import callback_url

log = structlog.get_logger("relayd.wiring")

# The first pass waits mostly on store commits and the platform: many passes at once share both. Afterwards
# resyncs are CPU-bound, and fewer concurrent passes keep callback latency low.
FIRST_PASS_WORKERS = 32
STEADY_WORKERS = 8


@dataclass
class Parts:
    settings: Settings
    metrics: Metrics
    store: SharedStore
    platform: Platform
    engine: Engine
    queue: ReconcileQueue
    jobs: Jobs
    config: Configuration
    notices: Notices
    view: StatusView
    alerts: AlertManager
    callback_secret: bytes

    async def run_alerts(self, stop: asyncio.Event) -> None:
        """Evaluate the alert conditions and deliver notifications until ``stop`` (a supervised loop)."""
        await self.alerts.run(stop, facts=self.view.alert_facts, clock=self.view.now)

    async def sync_groups(self) -> bool:
        """Create or update the declared ``[[group]]``s (first definition of a name wins)."""
        return await sync_groups(self.platform, self.config.current.groups)


def platform_for(client: LiveClient) -> Platform:
    """The platform the engine runs on (benchmarks swap this one seam for an in-memory platform)."""
    return LivePlatform(client)


async def build_parts(
    settings: Settings,
    stack: AsyncExitStack,
    metrics: Metrics,
    clock: Callable[[], float] = time.time,
    is_ready: Callable[[], bool] = lambda: True,
) -> Parts:
    store = await open_store(settings, clock=clock)
    stack.push_async_callback(store.close)
    session = await stack.enter_async_context(aiohttp.ClientSession())
    observer = metrics.api_observer(clock)
    client = LiveClient(
        settings.endpoint,
        settings.credentials(),
        session=session,
        write_qps=settings.write_qps,
        list_qps=settings.list_qps,
        timeout_s=settings.api_timeout,
        max_attempts=settings.api_max_attempts,
        deadline_s=settings.api_deadline,
        observer=observer,
    )
    secret = await _callback_secret(settings, store)
    public = _public_url(settings)
    scheduler = build_scheduler()

    async def reconcile(schedule_id: ScheduleId) -> None:
        started = time.perf_counter()
        await engine.reconcile(schedule_id)
        metrics.observe_reconcile(time.perf_counter() - started)

    queue = ReconcileQueue(reconcile, workers=FIRST_PASS_WORKERS, limit=STEADY_WORKERS)
    jobs = Jobs(scheduler, queue.submit, clock=clock)
    platform = platform_for(client)
    engine = Engine(
        store=store,
        platform=platform,
        config=engine_config(settings),
        callback_url=lambda key: callback_url(public, secret, key),
        jobs=jobs,
        clock=clock,
        rand=random.random,
        on_outcome=outcome_metrics(metrics),
    )
    config = Configuration(settings.schedules_dir, store, metrics)
    view = StatusView(
        config=config, engine=engine, store=store, jobs=jobs, observer=observer, clock=clock, is_ready=is_ready
    )
    metrics.set_sources(segment_counts=view.segment_counts, next_handoff=view.next_handoff)
    scheduler.start()
    stack.callback(scheduler.shutdown, wait=False)
    notices = Notices(engine, queue.submit)
    alerts = AlertManager.from_settings(settings, store=store, metrics=metrics)
    return Parts(settings, metrics, store, platform, engine, queue, jobs, config, notices, view, alerts, secret)


async def start_web(parts: Parts, stack: AsyncExitStack) -> int:
    """Start the HTTP server (callbacks, status API, health, metrics); returns the bound port."""
    settings = parts.settings
    app = build_app(
        store=parts.store,
        view=parts.view,
        metrics=parts.metrics,
        hint=parts.notices.hint,
        callback_secret=parts.callback_secret,
        callback_auth_key=settings.callback_auth_key.get_secret_value() if settings.callback_auth_key else None,
        callback_max_age=settings.callback_max_age,
        api_token=_api_token(settings),
        platform_window_s=max(2 * settings.resync_interval, 600.0),
        limits=HttpLimits(read_timeout_s=settings.http_read_timeout, max_connections=settings.http_max_connections),
        started=parts.view.ready,
        alerts=parts.alerts.open_alerts,
        actions=DaemonActions(store=parts.store, jobs=parts.jobs, clock=parts.view.now),
    )
    server = WebServer(app, shutdown_timeout=min(5.0, settings.shutdown_timeout))
    host, port = parse_listen(settings.listen)
    bound = await server.start(host, port)
    stack.push_async_callback(server.stop)
    return bound


def _api_token(settings: Settings) -> str:
    """The configured token, or one generated once and kept (mode 0600) next to the state file."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    return ensure_token_file(token_file(settings.state_path))


async def _callback_secret(settings: Settings, store: SharedStore) -> bytes:
    if settings.callback_secret is not None:
        return settings.callback_secret.get_secret_value().encode()
    stored = store.meta("callback_secret")
    if stored is None:
        stored = secrets.token_hex(32)
        await store.set_meta("callback_secret", stored)
    return stored.encode()


def _public_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host, port = parse_listen(settings.listen)
    log.warning("public_url_unset", listen=settings.listen, note="callbacks will only work from this machine")
    return f"http://{host}:{port}"
