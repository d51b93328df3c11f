"""Leader election among the instances that share one store, and the gate every platform write passes.

Why: several relayd instances (on different hosts) share one PostgreSQL installation so that one host's death
does not stop hand-offs, restarts and cleanup. Exactly one of them — the holder of the store's lease — acts on the
platform; the others are standbys: they keep their copy of the shared state warm, receive callbacks (recorded in
the shared history, then passed to the leader with a wake-up), and take over when the leader's lease lapses.

The safety rule is ``Elector.may_act``: an instance may write to the platform only while it holds the lease, has
finished taking over (its mirror reloaded and the platform listed, so it never acts on a stale picture), and the
*monotonic* clock is before its local deadline — the start of its last successful renewal plus ``lease_ttl -
lease_margin``. The database sets the lease's expiry from its own clock *after* that start, so the local deadline
always comes at least ``lease_margin`` before any other instance can take the lease. An instance that was paused
(SIGSTOP, a frozen VM) or cut off finds on waking that its deadline has passed and refuses writes before it asks
anyone anything. ``LiveClient`` calls ``check_write`` after pacing, right before each write is sent; the store's
fencing epoch refuses a deposed leader's late state writes on top of that.

With SQLite the store answers as the only instance (epoch 1, a lease that never lapses), so the same loop makes a
single daemon the leader at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import structlog

from relayd.ids import ScheduleId, SegmentKey
from relayd.metrics import Metrics
from relayd.store import SharedStore, StoreError
from relayd.store.leases import Lease, Role
from relayd.store.records import Event
from relayd.web.notices import CallbackNotice, parse_notice

log = structlog.get_logger("relayd.leadership")

REPLAY_WINDOW_S = 300.0
"""A leader that has not yet replayed a schedule's callbacks looks back this far on its first wake-up."""
REPLAY_LIMIT = 20

Hint = Callable[[ScheduleId, SegmentKey, CallbackNotice], None]
Submit = Callable[[ScheduleId], None]


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """How long a lease lasts, how often it is renewed, and how early a leader that cannot renew stops acting.

    Failover bound: a standby takes over at most ``ttl + renew`` after the leader's last renewal, plus the time to
    reload the state and list the platform."""

    ttl: float = 10.0
    renew: float = 2.0
    margin: float = 3.0
    standby_refresh: float = 15.0

    @property
    def call_timeout(self) -> float:
        """A lease call that takes longer than this counts as failed (the loop must keep its rhythm)."""
        return max(self.renew, self.ttl / 2)


def local_deadline(started: float, lease: Lease, timing: LeaseTiming) -> float:
    """The monotonic instant after which the holder of ``lease``, renewed by a call that began at ``started``, must
    not act. The database read its clock after ``started``, so its expiry is later still by at least the margin."""
    if math.isinf(lease.expires_at):
        return math.inf
    return started + timing.ttl - timing.margin


class NotLeaderError(Exception):
    """A platform write was refused because this instance may not act (standby, deposed, or lease unconfirmed)."""


@runtime_checkable
class Refreshable(Protocol):
    async def refresh(self) -> None: ...


async def refresh_store(store: object) -> None:
    """Reload a shared store's mirror from the database (PostgreSQL); a no-op for a store only this process uses."""
    if isinstance(store, Refreshable):
        await store.refresh()


@dataclass(frozen=True, slots=True)
class Standing:
    """This instance's role as the health check and the status API show it."""

    instance_id: str
    role: Role
    acting: bool
    epoch: int | None
    lease_expires_at: float | None
    """Unix seconds (database clock) of the lease this instance holds; None for a standby or a lease without end."""
    following: bool
    """A standby that reached the shared store within one lease length: it can take over."""

    def as_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "role": self.role.value,
            "acting": self.acting,
            "epoch": self.epoch,
            "lease_expires_at": self.lease_expires_at,
            "following": self.following,
        }


class Elector:
    """The election loop of one instance and its "may act" gate; see the module docstring.

    ``prepare`` (set by the wiring) readies a new leader: reload the mirror, list the platform; True when it may
    start acting. ``on_acting`` then starts the work (submit every schedule)."""

    def __init__(
        self,
        store: SharedStore,
        *,
        instance_id: str,
        timing: LeaseTiming,
        metrics: Metrics,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance_id = instance_id
        self.timing = timing
        self.prepare: Callable[[], Awaitable[bool]] = _ready
        self.on_acting: Callable[[], Awaitable[None]] = _nothing
        self._store = store
        self._metrics = metrics
        self._monotonic = monotonic
        self._lease: Lease | None = None
        self._deadline = -math.inf
        self._acting = False
        self._last_contact = -math.inf
        self._last_refresh = monotonic()
        self._takeover: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._starting = False
        metrics.set_leader_source(self.may_act)

    # --- the gate -------------------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._lease is not None

    def may_act(self) -> bool:
        """True while this instance may write to the platform (see the module docstring)."""
        return self._acting and self._monotonic() < self._deadline

    def check_write(self, action: str) -> None:
        """``LiveClient``'s write gate: raise NotLeaderError unless this instance may act now."""
        if not self.may_act():
            raise NotLeaderError(f"{action} refused: instance {self.instance_id} does not hold a valid lease")

    def begin_acting(self) -> None:
        """The leader is ready (mirror reloaded, platform listed): platform writes may go out from now on."""
        self._starting = False
        if self._lease is not None and not self._acting:
            self._acting = True
            log.info("leader_acting", instance_id=self.instance_id, epoch=self._lease.epoch)

    def standing(self) -> Standing:
        lease = self._lease
        expires = None if lease is None or math.isinf(lease.expires_at) else lease.expires_at
        following = lease is None and self._monotonic() - self._last_contact < self.timing.ttl
        return Standing(
            self.instance_id, Role.LEADER if lease else Role.STANDBY, self.may_act(), lease.epoch if lease else None,
            expires, following,
        )  # fmt: skip

    # --- the loop -------------------------------------------------------------------------------------------

    async def first_round(self) -> bool:
        """One election round at start-up; True if this instance leads (the daemon then does the first pass)."""
        await self._round()
        self._starting = self.is_leader  # the daemon's first pass is this leader's preparation
        return self.is_leader

    async def run(self, stop: asyncio.Event) -> None:
        """Renew (leader) or try to take (standby) the lease every ``renew`` seconds until ``stop``; then hand the
        lease back so a standby takes over without waiting for it to lapse."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.timing.renew)
                if stop.is_set():
                    break
                await self._round()
                self._follow_up()
                await self._refresh_standby()
        finally:
            await self._release()

    async def _round(self) -> None:
        started = self._monotonic()
        if self._lease is not None:
            await self._renew(self._lease, started)
        else:
            lease = await self._call(self._store.try_acquire(self.instance_id, self.timing.ttl))
            if isinstance(lease, Lease):
                self._elected(lease, started)
        await self._heartbeat()

    async def _renew(self, lease: Lease, started: float) -> None:
        renewed = await self._call(self._store.renew(lease, self.timing.ttl))
        if isinstance(renewed, Lease):
            self._lease, self._deadline = renewed, local_deadline(started, renewed, self.timing)
        elif renewed is None:
            self._deposed("lease_lost")
        elif self._monotonic() >= self._deadline:
            self._deposed("lease_unconfirmed")

    async def _call(self, call: Awaitable[Lease | None]) -> Lease | Exception | None:
        """A lease call bounded in time; its failure returned (logged), never raised: outages must not crash."""
        try:
            async with asyncio.timeout(self.timing.call_timeout):
                result = await call
        except Exception as exc:  # any database or pool failure is an outage here, whatever its class
            log.warning("lease_call_failed", instance_id=self.instance_id, error=_reason(exc))
            return exc
        self._last_contact = self._monotonic()
        return result

    def _elected(self, lease: Lease, started: float) -> None:
        self._lease, self._deadline, self._acting = lease, local_deadline(started, lease, self.timing), False
        self._metrics.leadership_change("elected")
        log.warning("leadership_acquired", instance_id=self.instance_id, epoch=lease.epoch)

    def _deposed(self, reason: str) -> None:
        lease, self._lease, self._acting, self._deadline = self._lease, None, False, -math.inf
        if self._takeover is not None:
            self._takeover.cancel()
        self._metrics.leadership_change("deposed")
        epoch = lease.epoch if lease else None
        log.warning("leadership_lost", instance_id=self.instance_id, reason=reason, epoch=epoch)

    def _follow_up(self) -> None:
        """A leader that is not acting yet (just elected, or its last preparation failed) prepares in the background,
        so the lease keeps being renewed meanwhile."""
        busy = self._takeover is not None and not self._takeover.done()
        if self._lease is None or self._acting or self._starting or busy:
            return
        self._takeover = asyncio.create_task(self._take_over(self._lease), name="relayd-takeover")

    async def _take_over(self, lease: Lease) -> None:
        try:
            ready = await self.prepare()
        except Exception:  # a failed preparation is retried on the next round, not fatal
            log.exception("takeover_failed", instance_id=self.instance_id)
            return
        if ready and self._lease is not None and self._lease.epoch == lease.epoch:
            self.begin_acting()
            await self.on_acting()

    async def _heartbeat(self) -> None:
        lease = self._lease
        expires = None if lease is None or math.isinf(lease.expires_at) else lease.expires_at
        role = Role.LEADER if lease else Role.STANDBY
        try:
            async with asyncio.timeout(self.timing.call_timeout):
                await self._store.heartbeat(self.instance_id, role, expires)
        except Exception as exc:  # status only: an outage must not stop the election
            log.info("heartbeat_failed", instance_id=self.instance_id, error=_reason(exc))

    async def _refresh_standby(self) -> None:
        """A standby reloads the shared state now and then, so that it knows the segments callbacks name."""
        now = self._monotonic()
        if self._lease is not None or now - self._last_refresh < self.timing.standby_refresh:
            return
        self._last_refresh = now
        try:
            await refresh_store(self._store)
        except Exception as exc:  # retried on the next cadence
            log.info("standby_refresh_failed", instance_id=self.instance_id, error=_reason(exc))

    async def _release(self) -> None:
        if self._takeover is not None:
            self._takeover.cancel()
        lease, self._lease, self._acting = self._lease, None, False
        if lease is None or math.isinf(lease.expires_at):
            return
        with contextlib.suppress(Exception):  # stopping anyway: at worst the lease lapses by itself
            async with asyncio.timeout(self.timing.call_timeout):
                await self._store.release(lease)
                log.info("leadership_released", instance_id=self.instance_id, epoch=lease.epoch)

    # --- callbacks and wake-ups -----------------------------------------------------------------------------

    def route(self, hint: Hint) -> Hint:
        """The web layer's reconcile hint: the leader handles a callback itself; a standby (which has recorded it
        in the shared history already) wakes the leader."""

        def routed(schedule_id: ScheduleId, key: SegmentKey, notice: CallbackNotice) -> None:
            if self.is_leader:
                hint(schedule_id, key, notice)
                return
            task = asyncio.create_task(self._wake(schedule_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        return routed

    async def _wake(self, schedule_id: ScheduleId) -> None:
        try:
            await self._store.wake(schedule_id)
        except Exception as exc:  # lost: the leader's periodic resync looks at every schedule anyway
            log.info("wake_failed", schedule_id=schedule_id, error=_reason(exc))

    async def follow_wakes(self, stop: asyncio.Event, replay: CallbackReplay) -> None:
        """Consume wake-ups from standbys until ``stop``; the acting leader replays each schedule's new callbacks."""
        wakes = self._store.wakes()
        try:
            async for schedule_id in _until(stop, wakes):
                if self.may_act():
                    await replay.replay(schedule_id)
        finally:
            with contextlib.suppress(Exception):
                await _close(wakes)


class CallbackReplay:
    """The leader's side of a standby's wake-up: the callbacks a standby recorded for a schedule, handed to the
    reconciler as if they had arrived here (each once), then a reconcile pass."""

    def __init__(self, store: SharedStore, hint: Hint, submit: Submit, clock: Callable[[], float]) -> None:
        self._store = store
        self._hint = hint
        self._submit = submit
        self._clock = clock
        self._seen: dict[ScheduleId, int] = {}

    async def replay(self, schedule_id: ScheduleId) -> None:
        try:
            events = await self._store.events(schedule_id=schedule_id, kind="callback", limit=REPLAY_LIMIT)
        except StoreError as error:
            log.info("callback_replay_failed", schedule_id=schedule_id, error=str(error))
            events = []
        fresh = new_callbacks(events, self._seen.get(schedule_id), self._clock() - REPLAY_WINDOW_S)
        for event in fresh:
            notice = notice_of(event)
            if notice is not None and event.segment_key is not None:
                self._hint(schedule_id, event.segment_key, notice)
        if fresh:
            self._seen[schedule_id] = max(e.id or 0 for e in fresh)
        self._submit(schedule_id)


def new_callbacks(events: list[Event], seen_id: int | None, cutoff: float) -> list[Event]:
    """The events not replayed yet, oldest first: newer than ``seen_id``, or (none seen yet) newer than ``cutoff``."""
    fresh = [e for e in events if e.id is not None and (e.id > seen_id if seen_id is not None else e.ts >= cutoff)]
    return sorted(fresh, key=lambda e: e.id or 0)


def notice_of(event: Event) -> CallbackNotice | None:
    """The notice a recorded callback carried (its raw body parsed again), or None if it cannot be read."""
    try:
        body = json.loads(event.raw or "")
    except ValueError:
        return None
    return parse_notice(body) if isinstance(body, dict) else None


async def _until(stop: asyncio.Event, source: AsyncIterator[ScheduleId]) -> AsyncIterator[ScheduleId]:
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while True:
            item = asyncio.ensure_future(anext(source))
            await asyncio.wait({item, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not item.done():
                item.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await item
                return
            yield item.result()
    finally:
        stopper.cancel()


async def _close(source: AsyncIterator[ScheduleId]) -> None:
    closer = getattr(source, "aclose", None)
    if closer is not None:
        await closer()


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _ready() -> bool:
    return True


async def _nothing() -> None:
    return None
