"""Building the daemon's parts from its settings, in the order they depend on each other.

Each resource is entered into the daemon's ``AsyncExitStack`` as it is built, so it is closed in reverse order on
the way out: store (and its single-instance lock), HTTP client session and signed client, scheduler, HTTP server.
The daemon (``relayd.daemon``) only runs the lifecycle over what this returns.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from relayd.actions import Actions
from relayd.alerts.manager import AlertManager
from relayd.apiclient import live_client
from relayd.configuration import Configuration
from relayd.credentials import CredentialRefresh
from relayd.engine import Engine, engine_config, outcome_metrics
from relayd.groups import sync_groups
from relayd.ids import ScheduleId
from relayd.installation import Installation, installation_id
from relayd.jobs import Jobs, build_scheduler
from relayd.leadership import CallbackReplay, Elector, LeaseTiming, NotLeaderError, refresh_store
from relayd.metrics import Metrics
from relayd.noticing import Notices
from relayd.platform import Platform
from relayd.platform.live import LivePlatform
from relayd.queueing import ReconcileQueue
from relayd.removals import RemovalLimits
from relayd.schedules.loader import Limits
from relayd.schedules.model import Schedule
from relayd.settings import Settings
from relayd.statusview import StatusView
from relayd.store import SharedStore, StoreWriteError
from relayd.store.opening import open_store
from relayd.streams import StreamWatch
from relayd.tightening import platform_facts, with_facts
from relayd.volc.client import LiveClient
from relayd.web.app import WebServer, build_app, parse_listen
from relayd.web.auth import ensure_token_file, token_file
from relayd.web.connections import HttpLimits
from relayd.web.instances import InstancesApi
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
    streams: StreamWatch
    view: StatusView
    alerts: AlertManager
    callback_secret: bytes
    elector: Elector
    installation: Installation
    credentials: CredentialRefresh | None = None

    def loops(self, stop: asyncio.Event) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """The parts' own long-lived loops, named, for the daemon's supervisor."""
        return [
            ("relayd-notices", self.notices.run(stop)),
            ("relayd-alerts", self.alerts.run(stop, facts=self.view.alert_facts, clock=self.view.now)),
            ("relayd-stream-health", self.streams.run(stop)),
            ("relayd-leadership", self.lead(stop)),
        ]

    def set_schedules(self, schedules: list[Schedule]) -> set[ScheduleId]:
        """The desired schedules, for the engine and the stream checks; returns the ids added, changed or removed."""
        self.streams.set_schedules(schedules)
        return self.engine.set_schedules(schedules)

    async def sync_groups(self) -> bool:
        """Check the installation marker, then create or update the declared ``[[group]]``s (first definition of a
        name wins). Runs before the first pass, on every reload and every resync — on the acting leader only."""
        if not self.elector.may_act():
            return False
        try:
            marked = await self.installation.check()
            return await sync_groups(self.platform, self.config.current.groups) and marked
        except NotLeaderError as refused:  # deposed (or handing the lease back at shutdown) half way: not an error
            log.info("group_sync_stopped_not_leader", reason=str(refused))
            return False

    async def prepare_takeover(self) -> bool:
        """A newly elected leader: reload the state the previous leader wrote, then list the platform."""
        await refresh_store(self.store)
        return await self.engine.list_platform()

    async def lead(self, stop: asyncio.Event) -> None:
        """The election loop, and the leader's side of standbys' wake-ups (their callbacks replayed here)."""
        replay = CallbackReplay(self.store, self.notices.hint, self.queue.submit, self.view.now)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.elector.run(stop), name="relayd-election")
            group.create_task(self.elector.follow_wakes(stop, replay), name="relayd-wakes")

    async def prune(self) -> None:
        """Drop events and deleted segments older than ``history_days`` (the acting leader only: fenced writes)."""
        if not self.elector.may_act():
            return
        cutoff = self.view.now() - self.settings.history_days * 86400
        events = await self.store.prune_events(cutoff)
        segments = await self.store.prune_segments(cutoff)
        log.info("history_pruned", events=events, segments=segments)

    def refresh_credentials(self) -> bool:
        """On a reload: re-read the signing credentials; True when they changed (and are now in use)."""
        return self.credentials is not None and self.credentials.refresh()

    async def start_acting(self) -> None:
        """A leader that may act: its groups, then every schedule through the queue."""
        await self.sync_groups()
        self.queue.submit_many(sorted(self.engine.known_ids()))


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
    facts = platform_facts(settings)
    settings = with_facts(settings, facts)  # a shorter Title limit or a lower Create/Update rate found by the probe
    store = await open_store(settings, clock=clock)
    stack.push_async_callback(store.close)
    elector = Elector(store, instance_id=instance_name(settings), timing=lease_timing(settings), metrics=metrics)
    session = await stack.enter_async_context(aiohttp.ClientSession())
    observer = metrics.api_observer(clock)
    credentials = settings.credentials()
    client = live_client(
        settings,
        credentials,
        session=session,
        observer=observer,
        instance_id=elector.instance_id,
        write_gate=elector.check_write,
    )
    secret = await _callback_secret(settings, store)
    public = _public_url(settings)
    scheduler = build_scheduler()

    async def reconcile(schedule_id: ScheduleId) -> None:
        if not elector.may_act():
            return  # a standby (or a leader not ready yet): the leader's takeover submits every schedule
        started = time.perf_counter()
        try:
            await engine.reconcile(schedule_id)
        except NotLeaderError as refused:
            log.info("reconcile_stopped_not_leader", schedule_id=schedule_id, reason=str(refused))
            return
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
        facts=facts,
        on_handoff=lambda record, gap: metrics.handoff_gap(gap),
    )
    config = Configuration(
        settings.schedules_dir,
        store,
        metrics,
        limits=Limits(settings.max_schedule_file_bytes, settings.schedule_load_budget),
        removal_limits=RemovalLimits(settings.max_removals, settings.max_removal_fraction),
    )
    notices = Notices(engine, store, queue.submit)
    streams = StreamWatch(store=store, notices=notices, events=metrics, clock=clock)
    me = await installation_id(store)
    installation = Installation(
        platform=platform, me=me, namespace=settings.namespace, every=settings.resync_interval, clock=clock
    )
    engine.writes_held = installation.writes_held
    view = StatusView(
        config=config,
        engine=engine,
        store=store,
        jobs=jobs,
        observer=observer,
        streams=streams,
        clock=clock,
        is_ready=is_ready,
    )
    metrics.set_sources(
        segment_counts=view.segment_counts, next_handoff=view.next_handoff, stream_levels=streams.monitor.levels
    )
    view.conflicts = installation.conflicts
    scheduler.start()
    stack.callback(scheduler.shutdown, wait=False)
    alerts = AlertManager.from_settings(settings, store=store, metrics=metrics)
    fields = (settings, metrics, store, platform, engine, queue, jobs, config, notices, streams, view, alerts, secret)
    parts = Parts(*fields, elector, installation, CredentialRefresh(settings, credentials, client.use_credentials))
    elector.prepare, elector.on_acting = parts.prepare_takeover, parts.start_acting
    return parts


def instance_name(settings: Settings) -> str:
    """``instance_id``, else ``<hostname>:<listen port>`` (distinct for instances on one host: one port each)."""
    if settings.instance_id:
        return settings.instance_id
    _, port = parse_listen(settings.listen)
    return f"{socket.gethostname()}:{port}"


def lease_timing(settings: Settings) -> LeaseTiming:
    return LeaseTiming(
        ttl=settings.lease_ttl,
        renew=settings.lease_renew_interval,
        margin=settings.lease_margin,
        standby_refresh=settings.standby_refresh_interval,
    )


async def start_web(parts: Parts, stack: AsyncExitStack, reload: Callable[[], None] = lambda: None) -> int:
    """Start the HTTP server (callbacks, status API, health, metrics, the operator actions); returns the bound
    port. ``reload`` asks the daemon for a config reload (releasing held removals needs one)."""
    settings = parts.settings
    actions = Actions(
        store=parts.store, jobs=parts.jobs, removals=parts.config.removals, reload=reload, clock=parts.view.now
    )
    app = build_app(
        store=parts.store,
        view=parts.view,
        metrics=parts.metrics,
        hint=parts.elector.route(parts.notices.hint),
        callback_secret=parts.callback_secret,
        callback_auth_key=settings.callback_auth_key.get_secret_value() if settings.callback_auth_key else None,
        callback_max_age=settings.callback_max_age,
        api_token=_api_token(settings),
        platform_window_s=max(2 * settings.resync_interval, 600.0),
        limits=HttpLimits(read_timeout_s=settings.http_read_timeout, max_connections=settings.http_max_connections),
        started=parts.view.ready,
        alerts=parts.alerts.open_alerts,
        actions=actions,
        instances=InstancesApi(
            instances=parts.store.instances,
            standing=parts.elector.standing,
            now=parts.view.now,
            lease_s=settings.lease_ttl,
        ),
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
        try:
            await store.set_meta("callback_secret", secrets.token_hex(32))
        except StoreWriteError:  # another instance leads (fenced): it has stored one; every instance shares it
            await refresh_store(store)
        stored = store.meta("callback_secret")
        if stored is None:
            raise StoreWriteError("cannot store the generated callback_secret: set callback_secret in the config")
    return stored.encode()


def _public_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host, port = parse_listen(settings.listen)
    log.warning("public_url_unset", listen=settings.listen, note="callbacks will only work from this machine")
    return f"http://{host}:{port}"
