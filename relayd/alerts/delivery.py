"""Delivery: the notifications decided by the alert core → messages sent through Apprise, one target at a time.

Pipeline per target, in this order: queue (bounded, oldest dropped first) → group (everything queued becomes one
message) → send with a timeout → retry with full-jitter backoff → count and log the result.

Why one queue and one worker per target: a target that hangs or answers 500 must never delay the others, nor the
reconcile path that enqueues. Enqueueing is synchronous and only appends; each worker runs in the supervised task
``Delivery.run(stop)`` starts. A hanging target holds one worker and its own sending thread (see
:mod:`relayd.alerts.sender`: no Apprise work runs on the event loop, and no thread pool is shared between
targets) while the other workers go on.

Secrets: a target is named by :func:`relayd.alerts.targets.target_label` (its redacted URL) in logs, metrics and
errors; error texts from a plugin are scrubbed of the URL's secret pieces before they are logged.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, runtime_checkable

import structlog

from relayd.alerts.grouping import Message, group
from relayd.alerts.model import Notification
from relayd.alerts.redact import MASK, url_secrets
from relayd.alerts.sender import AppriseSender, DeliveryError
from relayd.alerts.targets import AlertTarget, target_label
from relayd.backoff import Backoff
from relayd.metrics import Metrics

log = structlog.get_logger("relayd.alerts")

DEFAULT_TIMEOUT_S = 10.0


class Sender(Protocol):
    async def __call__(self, message: Message) -> None:
        """Send ``message`` or raise DeliveryError."""


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None:
        """Release the sender's threads once their current send ends."""


SenderFactory = Callable[[AlertTarget], Sender]
Settled = Callable[[AlertTarget, Sequence[Notification]], None]
"""Called when a target is done with notifications: sent, given up, or dropped. Must not block."""


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    installation: str = "relayd"
    """Named in every message title (the namespace), so two installations are told apart."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(base=2.0, factor=2.0, cap=300.0))
    queue_max: int = 1000


def scrub(text: str, target: AlertTarget) -> str:
    """``text`` with every secret piece of the target's URL replaced by ``***``."""
    for secret in url_secrets(target.url, every_part=True):
        if len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text


def apprise_sender(target: AlertTarget, timeout_s: float = DEFAULT_TIMEOUT_S) -> Sender:
    """A Sender for one Apprise URL, sending from a thread of its own; AlertConfigError when Apprise cannot use it."""
    return AppriseSender(target, timeout_s=timeout_s)


@dataclass(eq=False)
class _Worker:
    index: int
    target: AlertTarget
    sender: Sender
    label: str
    queue: deque[Notification] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


def _nothing_settled(target: AlertTarget, notifications: Sequence[Notification]) -> None:
    return None


class Delivery:
    """Per-target queues and workers; see the module docstring."""

    def __init__(
        self,
        targets: Sequence[AlertTarget],
        *,
        metrics: Metrics,
        policy: DeliveryPolicy,
        sender_factory: SenderFactory | None = None,
        on_settled: Settled = _nothing_settled,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._metrics = metrics
        self._policy = policy
        self._on_settled = on_settled
        self._rand = rand
        make = sender_factory or partial(apprise_sender, timeout_s=policy.timeout_s)
        self._workers = [_Worker(i, t, make(t), target_label(i, t)) for i, t in enumerate(targets, start=1)]

    @property
    def targets(self) -> list[AlertTarget]:
        return [w.target for w in self._workers]

    def queued(self) -> int:
        return sum(len(w.queue) for w in self._workers)

    def enqueue(self, notifications: Sequence[Notification], only: frozenset[str] | None = None) -> None:
        """Queue each notification for the targets that take it (``only``: target idents, for the outbox)."""
        for w in self._workers:
            if only is not None and w.target.ident not in only:
                continue
            taken = [n for n in notifications if w.target.accepts(n)]
            if taken:
                w.queue.extend(taken)
                self._bound(w)
                w.wake.set()

    def _bound(self, w: _Worker) -> None:
        excess = len(w.queue) - self._policy.queue_max
        if excess <= 0:
            return
        dropped = [w.queue.popleft() for _ in range(excess)]
        self._metrics.alert_dropped_notifications(w.label, excess)
        log.warning("alert_queue_full", target=w.label, dropped=excess, queue_max=self._policy.queue_max)
        self._on_settled(w.target, dropped)

    async def run(self, stop: asyncio.Event) -> None:
        """Run one worker per target until ``stop`` is set; what is still queued then stays owed."""
        try:
            async with asyncio.TaskGroup() as tasks:
                for w in self._workers:
                    tasks.create_task(self._work(w, stop), name=f"alert-target-{w.index}")
                await stop.wait()
                for w in self._workers:
                    w.wake.set()
        finally:
            for w in self._workers:
                if isinstance(w.sender, Closable):
                    w.sender.close()

    async def _work(self, w: _Worker, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await w.wake.wait()
            w.wake.clear()
            while w.queue and not stop.is_set():
                batch = list(w.queue)
                w.queue.clear()
                if not await self._deliver(w, batch, stop):
                    w.queue.extendleft(reversed(batch))  # stopped mid-way: still owed
                    return
                self._on_settled(w.target, batch)

    async def _deliver(self, w: _Worker, batch: list[Notification], stop: asyncio.Event) -> bool:
        """Send ``batch`` as one message with retries; False only when ``stop`` interrupted it."""
        message = group(batch, installation=self._policy.installation)
        for attempt in range(1, self._policy.max_attempts + 1):
            error = await self._attempt(w, message)
            if error is None:
                self._metrics.alert_delivery(w.label, "sent")
                log.info("alert_sent", target=w.label, notifications=len(batch), attempt=attempt)
                return True
            self._metrics.alert_delivery(w.label, "error")
            log.warning("alert_send_failed", target=w.label, attempt=attempt, error=error)
            if attempt < self._policy.max_attempts:
                delay = self._policy.backoff.delay(attempt, self._rand())
                if await _stopped_within(stop, delay):
                    return False
        self._metrics.alert_delivery(w.label, "gave_up")
        log.error("alert_delivery_gave_up", target=w.label, notifications=len(batch), attempts=attempt)
        return True

    async def _attempt(self, w: _Worker, message: Message) -> str | None:
        """One send under the timeout; the failure described without secrets, or None on success."""
        try:
            async with asyncio.timeout(self._policy.timeout_s):
                await w.sender(message)
        except TimeoutError:
            return f"no answer within {self._policy.timeout_s:g} s"
        except DeliveryError as e:
            return scrub(str(e), w.target)
        except Exception as e:  # a plugin crash is one failed attempt, never a dead worker
            return scrub(f"{type(e).__name__}: {e}", w.target)
        return None

    async def send_now(self, message: Message) -> list[str]:
        """Send ``message`` once to every target at the same time; the failures, each naming its target."""
        errors = await asyncio.gather(*(self._attempt(w, message) for w in self._workers))
        return [f"{w.label}: {e}" for w, e in zip(self._workers, errors, strict=True) if e is not None]


async def _stopped_within(stop: asyncio.Event, delay: float) -> bool:
    """Wait ``delay`` seconds unless ``stop`` is set first; True when stopped."""
    try:
        async with asyncio.timeout(delay):
            await stop.wait()
    except TimeoutError:
        return False
    return True
