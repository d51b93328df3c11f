"""Client-side pacing: one token bucket per action class, shared by every caller of one client.

The platform limits each account per action class (reference section 1): task writes, group actions and
ListPullToPushGroup at 10 QPS, ListPullToPushTask(V2) at 15 QPS, counted over a sliding one-second window.
A bucket with burst 1 spaces requests ``1/qps`` apart (plus a small margin for network jitter), so no one-second
window ever holds more than ``qps`` of them, even at the window's edge.

Fairness without a lock: :meth:`TokenBucket.acquire` *reserves* the next free slot synchronously (no await
between reading and advancing it), then sleeps until that slot. Callers are therefore served in call order
(FIFO). A caller cancelled while waiting leaves its slot unused, which only errs on the slow side. Retries call
``acquire`` again: every attempt costs a token.

Clock and sleep are injected so tests run on a fake clock without sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
DEFAULT_MARGIN_S = 0.005


class ActionClass(enum.Enum):
    WRITE = "write"
    LIST = "list"


class TokenBucket:
    """Burst-1 bucket: successive grants at least ``1/rate + margin_s`` apart, in FIFO order."""

    def __init__(
        self,
        rate: float,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 (got {rate})")
        self.rate = rate
        self.interval = 1.0 / rate + margin_s
        self._clock = clock
        self._sleep = sleep
        self._next_free: float | None = None

    def reserve(self) -> float:
        """Claim the next slot; return how long the caller must wait for it (0 if free now)."""
        now = self._clock()
        slot = now if self._next_free is None or self._next_free <= now else self._next_free
        self._next_free = slot + self.interval
        return slot - now

    async def acquire(self) -> float:
        """Wait for a token; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)
        return wait


class Pacer:
    """The buckets of one client. ``enabled=False`` (benchmarks, tests) makes :meth:`acquire` free."""

    def __init__(
        self,
        *,
        write_qps: float = 10.0,
        list_qps: float = 15.0,
        enabled: bool = True,
        margin_s: float = DEFAULT_MARGIN_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.enabled = enabled
        self._buckets = {
            ActionClass.WRITE: TokenBucket(write_qps, margin_s=margin_s, clock=clock, sleep=sleep),
            ActionClass.LIST: TokenBucket(list_qps, margin_s=margin_s, clock=clock, sleep=sleep),
        }

    def bucket(self, action_class: ActionClass) -> TokenBucket:
        return self._buckets[action_class]

    async def acquire(self, action_class: ActionClass) -> float:
        if not self.enabled:
            return 0.0
        return await self._buckets[action_class].acquire()
