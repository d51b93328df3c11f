"""Leadership among instances that share one store: the lease rules, and the single-instance answer of SQLite.

Why a lease with a fencing epoch: exactly one instance may act on the platform. The leader holds a lease that it
renews; when it stops renewing (dead, paused, cut off), the lease expires and another instance takes it with the
next epoch. Every write to the state a leader owns carries the writer's epoch, and the database refuses it when a
newer epoch exists (``FencedError``), so a deposed leader that wakes up late cannot overwrite its successor's work.

Why the rules are pure functions taking ``now``: the database's clock decides expiry (never the callers', which may
disagree), so a backend reads ``now()`` inside the transaction that locks the lease row and asks these functions
what the row becomes. The functions can then be tested without a database or a clock.

SQLite has one instance per state file (the file lock), so ``SingleLeader`` makes it always the leader, epoch 1.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from relayd.ids import ScheduleId


@dataclass(frozen=True, slots=True)
class Lease:
    """The leadership of one installation: who holds it, its fencing epoch, and when it lapses (database clock)."""

    holder: str
    epoch: int
    expires_at: float
    """Unix seconds by the database's clock; the lease is valid while the database's ``now`` is before this."""


class Role(StrEnum):
    LEADER = "leader"
    STANDBY = "standby"


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One instance as it last reported itself (for status)."""

    instance_id: str
    role: Role
    heartbeat_at: float
    lease_expires_at: float | None


def claim(current: Lease | None, instance_id: str, ttl_s: float, now: float) -> Lease | None:
    """``try_acquire``: the lease row after ``instance_id`` asks for it at ``now``, or None if another holds it.

    A free or lapsed lease is taken with the next epoch (so every change of leader, and every return after a lapse,
    fences what came before); the holder asking again while valid just extends it."""
    if current is not None and current.expires_at > now:
        if current.holder != instance_id:
            return None
        return replace(current, expires_at=now + ttl_s)
    epoch = current.epoch + 1 if current is not None else 1
    return Lease(instance_id, epoch, now + ttl_s)


def extend(current: Lease | None, lease: Lease, ttl_s: float, now: float) -> Lease | None:
    """``renew``: the extended lease, or None when ``lease`` is no longer the valid one.

    A lapsed lease is not renewed even if nobody took it: its holder must already have stopped acting, and taking
    it again goes through ``claim`` with a new epoch."""
    if current is None or (current.holder, current.epoch) != (lease.holder, lease.epoch) or current.expires_at <= now:
        return None
    return replace(current, expires_at=now + ttl_s)


def give_up(current: Lease | None, lease: Lease, now: float) -> Lease | None:
    """``release``: the row after ``lease``'s holder hands it back (it lapses now; the epoch stays, so the next
    leader's is higher). A lease that is no longer ``lease`` is left as it is."""
    if current is None or (current.holder, current.epoch) != (lease.holder, lease.epoch):
        return current
    return replace(current, expires_at=min(current.expires_at, now))


def fenced(current_epoch: int | None, writer_epoch: int) -> bool:
    """True when a write carrying ``writer_epoch`` must be refused: a newer leader exists.

    No lease row (nobody ever led: a single instance without election) fences nothing."""
    return current_epoch is not None and current_epoch > writer_epoch


class SingleLeader:
    """The lease API of a store that only one instance can open (SQLite): always the leader, epoch 1."""

    epoch = 1
    _clock: Callable[[], float]
    _wakes: asyncio.Queue[ScheduleId] | None = None
    _instance: InstanceInfo | None = None

    async def try_acquire(self, instance_id: str, ttl_s: float) -> Lease | None:
        return Lease(instance_id, 1, math.inf)

    async def renew(self, lease: Lease, ttl_s: float) -> Lease | None:
        return lease

    async def release(self, lease: Lease) -> None:
        return None

    async def heartbeat(self, instance_id: str, role: Role, lease_expires_at: float | None) -> None:
        self._instance = InstanceInfo(instance_id, role, self._clock(), lease_expires_at)

    async def instances(self) -> list[InstanceInfo]:
        return [] if self._instance is None else [self._instance]

    async def wake(self, schedule_id: ScheduleId) -> None:
        self._queue().put_nowait(schedule_id)

    async def wakes(self) -> AsyncIterator[ScheduleId]:
        """Schedules other instances asked the leader to look at (here: only this process can ask)."""
        queue = self._queue()
        while True:
            yield await queue.get()

    def _queue(self) -> asyncio.Queue[ScheduleId]:
        if self._wakes is None:
            self._wakes = asyncio.Queue()
        return self._wakes
