"""Client-side pacing: one adaptive gate per action class, shared by every caller of one client.

The platform limits each account per action class (reference section 1): task writes, group actions and
ListPullToPushGroup at 10 QPS, ListPullToPushTask(V2) at 15 QPS, counted over a sliding one-second window;
BytePlus MediaLive limits CreatePullToPushTask and UpdatePullToPushTask to 1 QPS each (section 10). Create and
Update pass two gates: their own (``create_update_qps``) and the write class's.

Why not a token bucket with a margin on every interval (the first version): spacing grants ``1/qps + 5 ms`` apart
cost 5 % at 10 QPS (N creates took 1.045 x N/QPS), and the margin still did not protect against the real risk,
a waiter woken late by a busy loop sending close to the request ``qps`` places ahead of it. A gate instead:

* spaces releases ``1/rate`` apart on an ideal grid, so a waiter woken a little late (less than half an interval)
  does not push every later slot back; after idle time the grid restarts at the next caller (no burst);
* lets at most ``n = max(1, floor(rate))`` releases into any window of ``n / rate + margin_s`` seconds, measured on
  the *actual* release times: however late the loop wakes a waiter, no sliding window sent ever holds more than
  the limit, and the margin (15 ms) absorbs network jitter between the requests ``n`` apart. N requests take
  about ``N / rate x (1 + margin_s)``: 1.5 % over the floor.

Releases go by urgency: each caller brings a ``priority`` (a point in time, lower first: the client passes a
Create's or Update's StartTime, and "now" for every other call), and each slot goes to the most urgent caller
waiting *when the slot comes*, in call order among equal priorities. Why: at 1 Create/s (BytePlus) a burst of
creates takes seconds to pass, and in call order a segment whose hand-off is a second away would wait behind
creates for segments that start much later, and start late. One waiter keeps time (sleeps until the next slot);
a more urgent caller arriving meanwhile takes that slot and the keeper keeps time for the next. A caller cancelled
while waiting gives its turn to the next (a caller cancelled between its grant and its return leaves that slot
unused, which errs on the safe side). Retries acquire again: every attempt is paced.

Adaptation: a throttling answer means the platform's limit is lower than configured (another client on the
account, a smaller quota). The gate halves its rate (at most once per ``recover_after_s``, so a burst of throttled
answers is one cut; never below 1/16 of the configured rate) and then recovers: every ``recover_after_s`` without a
throttle it doubles, up to the configured rate.

Clock and sleep are injected so tests run on a fake clock without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

log = structlog.get_logger("relayd.volc.pacing")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
DEFAULT_MARGIN_S = 0.015
RECOVER_AFTER_S = 5.0
RECOVER_FACTOR = 2.0
"""After ``RECOVER_AFTER_S`` without a throttle the pace doubles (back to the configured rate within a few periods:
relays waiting to be created matter more than a second throttled answer, which only cuts it again)."""
FLOOR_FRACTION = 1 / 16


class ActionClass(StrEnum):
    WRITE = "write"
    LIST = "list"
    CREATE = "create"  # CreatePullToPushTask: its own gate, then the write gate
    UPDATE = "update"  # UpdatePullToPushTask: its own gate, then the write gate


@dataclass(order=True, slots=True)
class _Waiter:
    """A caller waiting at a gate, ordered by urgency and then by arrival."""

    priority: float
    arrival: int
    wake: asyncio.Event = field(default_factory=asyncio.Event, compare=False)
    granted: bool = field(default=False, compare=False)
    granted_at: float = field(default=0.0, compare=False)


class Gate:
    """An adaptive pace: releases ``1/rate`` apart and at most ``n`` per ``n/rate + margin_s``, most urgent first."""

    def __init__(
        self,
        rate: float,
        *,
        name: str = "",
        margin_s: float = DEFAULT_MARGIN_S,
        recover_after_s: float = RECOVER_AFTER_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 (got {rate})")
        self.name = name
        self.configured = rate
        self.rate = rate
        self._margin_s = margin_s
        self._recover_after_s = recover_after_s
        self._clock = clock
        self._sleep = sleep
        self._queue: list[_Waiter] = []
        self._arrivals = itertools.count()
        self._keeper: _Waiter | None = None
        self._next_slot: float | None = None
        self._released: deque[float] = deque(maxlen=max(1, math.floor(rate)))
        self._changed_at = -math.inf

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def due(self, now: float) -> float:
        """The earliest instant the next caller may be released (``now`` or earlier: at once)."""
        due = now if self._next_slot is None else self._next_slot
        n = max(1, math.floor(self.rate))
        if len(self._released) >= n:
            due = max(due, self._released[-n] + n / self.rate + self._margin_s)
        return due

    def release(self, now: float) -> None:
        """Record a release at ``now``; the next slot follows the grid unless the gate was idle."""
        slot = self._next_slot
        on_grid = slot is not None and slot >= now - self.interval / 2
        self._next_slot = (slot if on_grid and slot is not None else now) + self.interval
        self._released.append(now)

    async def acquire(self, priority: float = 0.0) -> float:
        """Wait for this caller's turn (lowest ``priority`` first, FIFO among equals); return the seconds waited."""
        started = self._clock()
        await self.take(priority)
        return self._clock() - started

    def used(self, granted_at: float, now: float) -> None:
        """A slot granted at ``granted_at`` was used only at ``now`` (another gate held the call): count it then.

        Why: a Create passes its own gate, then the write gate; a wait at the second would otherwise let the next
        Create, granted on time, reach the platform less than ``1/rate`` after this one.
        """
        with contextlib.suppress(ValueError):
            self._released.remove(granted_at)
        self._released.append(now)

    async def take(self, priority: float = 0.0) -> float:
        """Wait for this caller's turn (lowest ``priority`` first, FIFO among equals); return the grant's instant."""
        waiter = _Waiter(priority, next(self._arrivals))
        heapq.heappush(self._queue, waiter)
        try:
            while not waiter.granted:
                if self._keeper is None:
                    await self._keep(waiter)
                else:
                    await waiter.wake.wait()
                    waiter.wake.clear()
        finally:
            self._leave(waiter)
        return waiter.granted_at

    async def _keep(self, waiter: _Waiter) -> None:
        """Keep time for the queue: sleep until the next slot, then grant it to the most urgent waiter *then*.

        The keeper is only the one who sleeps; a more urgent caller arriving during the sleep takes the slot, and the
        keeper keeps time for the next one.
        """
        self._keeper = waiter
        try:
            while (wait := self.due(now := self._clock()) - now) > 0:
                await self._sleep(wait)
            first = heapq.heappop(self._queue)
            first.granted_at = self._clock()
            self.release(first.granted_at)
            first.granted = True
            first.wake.set()
        finally:
            self._keeper = None

    def _leave(self, waiter: _Waiter) -> None:
        """A waiter is done (granted, or cancelled while waiting): if nobody keeps time now, wake the next one."""
        if not waiter.granted:
            self._queue.remove(waiter)
            heapq.heapify(self._queue)
        if self._keeper is None and self._queue:
            self._queue[0].wake.set()

    def throttled(self) -> None:
        """The platform answered "too many requests": halve the rate (once per window, down to a floor)."""
        now = self._clock()
        # A burst of throttled answers is one signal: cut once per recovery period, not once per answer (a burst of
        # fifteen used to take the pace to its floor in a few seconds, and every hand-off waited behind it).
        if now - self._changed_at < self._recover_after_s:
            return
        self._set_rate(max(self.configured * FLOOR_FRACTION, self.rate / 2), now)
        log.warning("api_pace_reduced", action_class=self.name, qps=round(self.rate, 3))

    def succeeded(self) -> None:
        """A call went through: after ``recover_after_s`` without a throttle, step the rate back up."""
        now = self._clock()
        if self.rate >= self.configured or now - self._changed_at < self._recover_after_s:
            return
        self._set_rate(min(self.configured, self.rate * RECOVER_FACTOR), now)
        log.info("api_pace_recovered", action_class=self.name, qps=round(self.rate, 3))

    def _set_rate(self, rate: float, now: float) -> None:
        self.rate = rate
        self._changed_at = now
        if self._next_slot is not None:
            self._next_slot = max(self._next_slot, now + self.interval)


class Pacer:
    """The gates of one client. ``enabled=False`` (benchmarks, tests) makes :meth:`acquire` free."""

    def __init__(
        self,
        *,
        write_qps: float = 10.0,
        list_qps: float = 15.0,
        create_update_qps: float | None = None,
        enabled: bool = True,
        margin_s: float = DEFAULT_MARGIN_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.enabled = enabled
        self._clock = clock
        own = create_update_qps if create_update_qps is not None else write_qps
        rates = {ActionClass.WRITE: write_qps, ActionClass.LIST: list_qps}
        rates |= {ActionClass.CREATE: own, ActionClass.UPDATE: own}
        self._gates = {
            cls: Gate(rate, name=cls.value, margin_s=margin_s, clock=clock, sleep=sleep) for cls, rate in rates.items()
        }

    def gate(self, action_class: ActionClass) -> Gate:
        return self._gates[action_class]

    def gates_of(self, action_class: ActionClass) -> tuple[Gate, ...]:
        """The gates a call of this class passes, most specific first (Create/Update: own, then write)."""
        if action_class in (ActionClass.CREATE, ActionClass.UPDATE):
            return self._gates[action_class], self._gates[ActionClass.WRITE]
        return (self._gates[action_class],)

    async def acquire(self, action_class: ActionClass, priority: float = 0.0) -> float:
        """Pass every gate of the class, each by ``priority`` (lower first); return the seconds waited."""
        if not self.enabled:
            return 0.0
        started = self._clock()
        passed: list[tuple[Gate, float]] = []
        for gate in self.gates_of(action_class):
            passed.append((gate, await gate.take(priority)))
        now = self._clock()
        for gate, granted_at in passed[:-1]:
            if granted_at < now:
                gate.used(granted_at, now)
        return now - started

    def throttled(self, action_class: ActionClass) -> None:
        for gate in self.gates_of(action_class):
            gate.throttled()

    def succeeded(self, action_class: ActionClass) -> None:
        for gate in self.gates_of(action_class):
            gate.succeeded()
