"""Delivery: the notifications decided by the alert core → messages sent through Apprise, one target at a time.

Pipeline per target, in this order: queue (bounded, oldest dropped first) → group (everything queued becomes one
message) → send with a timeout → retry with full-jitter backoff → count and log the result.

Why one queue and one worker per target: a target that hangs or answers 500 must never delay the others, nor the
reconcile path that enqueues. Enqueueing is synchronous and only appends; each worker runs in the supervised task
``Delivery.run(stop)`` starts. Sends run in the alert sender process this ``Delivery`` owns (see
:mod:`relayd.alerts.sender`: no Apprise work runs in the daemon's process, where its threads would compete with the
event loop for the GIL), each target on a thread of its own there: a hanging target holds one worker here and its
own thread there while the other workers go on.

Secrets: a target is named by :func:`relayd.alerts.targets.target_label` (its redacted URL) in logs, metrics and
errors; error texts from a plugin are scrubbed of the URL's secret pieces before they are logged.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from relayd.alerts.grouping import Message, group
from relayd.alerts.model import Notification
from relayd.alerts.redact import scrub
from relayd.alerts.sender import DeliveryError, SenderProcess
from relayd.alerts.targets import AlertTarget, target_label
from relayd.backoff import Backoff
from relayd.metrics import Metrics

log = structlog.get_logger("relayd.alerts")

DEFAULT_TIMEOUT_S = 10.0


class Sender(Protocol):
    async def __call__(self, message: Message) -> None:
        """Send ``message`` or raise DeliveryError."""


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
        self._process = SenderProcess(timeout_s=policy.timeout_s) if sender_factory is None and targets else None
        """The alert sender process behind the default senders: one per Delivery, started by the first send."""
        make = sender_factory or self._senders
        self._workers = [_Worker(i, t, make(t), target_label(i, t)) for i, t in enumerate(targets, start=1)]

    def _senders(self, target: AlertTarget) -> Sender:
        assert self._process is not None
        return self._process.sender(target)

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
            await self.close()

    async def close(self) -> None:
        """Stop the alert sender process, if this Delivery started one (``run`` does this when it ends)."""
        if self._process is not None:
            await self._process.stop()

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
            return scrub(str(e), w.target.url)
        except Exception as e:  # a plugin crash is one failed attempt, never a dead worker
            return scrub(f"{type(e).__name__}: {e}", w.target.url)
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
