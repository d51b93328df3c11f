"""The AlertManager: the one alert object the daemon owns.

What the daemon does with it, top to bottom:

1. build it at start-up (``AlertManager.from_settings(settings, store=store, metrics=metrics)``): it loads the
   durable state and queues again what was owed when relayd last stopped;
2. run ``manager.run(stop, facts=...)`` as a supervised task: it evaluates the facts every ``interval_s`` (and at
   the instant a damped alert is due), and delivers off the reconcile path, one worker per target;
3. hand ``manager.open_alerts`` to the web app for ``GET /v1/alerts``.

``evaluate(facts, now)`` may also be called directly (after a reconcile pass, in tests): it is cheap, touches no
network, and saves the state only when an alert's life changed (not when only a message's wording did).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from relayd.alerts.conditions import AlertFacts, ConditionPolicy, conditions
from relayd.alerts.decide import AlertState, Damping, Decision, Phase, Tracked, decide, open_alerts
from relayd.alerts.delivery import Delivery, DeliveryPolicy, SenderFactory
from relayd.alerts.grouping import Message, group
from relayd.alerts.model import Alert, AlertKind, Condition, Notification, Severity, Transition
from relayd.alerts.state import AlertStateStore, MetaAlertStateStore, MetaStore, Owed, SavedState
from relayd.alerts.targets import AlertTarget
from relayd.backoff import Backoff
from relayd.metrics import Metrics

if TYPE_CHECKING:
    from relayd.settings import Settings

log = structlog.get_logger("relayd.alerts")

FactsSource = Callable[[], AlertFacts]
SETTLE_SAVE_DELAY_S = 0.2
"""How long the saver waits after a delivery settles for others to settle too, so a burst is one save. A crash in
that window sends those notifications again after the restart (a clean stop saves first)."""
TEST_MESSAGE = "relayd can reach this target. Alerts will arrive here when a relay needs attention."


class AlertManager:
    """Evaluates conditions into durable alerts, owes their notifications to targets, and delivers them."""

    def __init__(
        self,
        *,
        targets: Sequence[AlertTarget],
        state_store: AlertStateStore,
        metrics: Metrics,
        damping: Damping | None = None,
        policy: ConditionPolicy | None = None,
        delivery: DeliveryPolicy | None = None,
        sender_factory: SenderFactory | None = None,
    ) -> None:
        self._store = state_store
        self._metrics = metrics
        self._damping = damping or Damping()
        self._policy = policy or ConditionPolicy()
        self._delivery_policy = delivery or DeliveryPolicy()
        self._delivery = Delivery(
            targets, metrics=metrics, policy=self._delivery_policy, sender_factory=sender_factory,
            on_settled=self._settled,
        )  # fmt: skip
        saved = state_store.load()
        self._state: dict[str, Tracked] = dict(saved.alerts)
        self._outbox: dict[str, Owed] = {o.notification.ident: o for o in saved.outbox}
        self._dirty = asyncio.Event()
        self._next_check: float | None = None
        self._requeue_outbox()
        self._publish()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, store: MetaStore, metrics: Metrics, sender_factory: SenderFactory | None = None
    ) -> AlertManager:
        """The manager the daemon runs, configured from ``alert_*`` settings, its state in ``store``'s meta."""
        return cls(
            targets=settings.alert_urls,
            state_store=MetaAlertStateStore(store),
            metrics=metrics,
            damping=Damping(settings.alert_open_after, settings.alert_resolve_after),
            policy=ConditionPolicy(
                prepare_ahead=settings.prepare_ahead,
                restart_max_attempts=settings.restart_max_attempts,
                platform_unreachable_after=settings.alert_platform_unreachable_after,
            ),
            delivery=delivery_policy(settings),
            sender_factory=sender_factory,
        )

    # -- evaluating ------------------------------------------------------------------------------------------

    async def evaluate(self, facts: AlertFacts, now: float) -> Decision:
        """Derive the conditions true at ``now`` and apply them."""
        return await self.apply(conditions(facts, now, self._policy), now)

    async def apply(self, found: Sequence[Condition], now: float) -> Decision:
        """Advance every alert to ``now`` given the conditions ``found``; owe, queue and save what it decided."""
        decision = decide(found, self._state, now, self._damping)
        changed = _skeleton(decision.state) != _skeleton(self._state)
        self._state = decision.state
        self._next_check = decision.next_check
        self._owe(decision.notifications)
        self._publish()
        if changed or decision.notifications:
            await self._save()
        return decision

    def open_alerts(self) -> list[Alert]:
        """Opened, not yet resolved alerts, most severe first (the ``/v1/alerts`` provider)."""
        return open_alerts(self._state)

    def next_check(self) -> float | None:
        return self._next_check

    def owed(self) -> int:
        """Notifications not yet sent (or given up) by every target that takes them."""
        return len(self._outbox)

    # -- running ---------------------------------------------------------------------------------------------

    async def run(
        self,
        stop: asyncio.Event,
        *,
        facts: FactsSource | None = None,
        clock: Callable[[], float] = time.time,
        interval_s: float = 10.0,
    ) -> None:
        """Deliver (and, with ``facts``, evaluate every ``interval_s``) until ``stop``; then save what is owed."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._delivery.run(stop), name="alert-delivery")
                tasks.create_task(self._saver(stop), name="alert-state-saver")
                if facts is not None:
                    tasks.create_task(self._evaluator(stop, facts, clock, interval_s), name="alert-evaluator")
        finally:
            await self._save()

    async def _evaluator(
        self, stop: asyncio.Event, facts: FactsSource, clock: Callable[[], float], interval: float
    ) -> None:
        while not stop.is_set():
            now = clock()
            try:
                await self.evaluate(facts(), now)
            except Exception:  # a bad fact must not end alerting; the next round tries again
                log.exception("alert_evaluation_failed")
            wait = interval if self._next_check is None else min(interval, max(0.05, self._next_check - clock()))
            await _wait(stop, wait)

    async def _saver(self, stop: asyncio.Event) -> None:
        """Saves the outbox after deliveries settle, off the workers' path (they only mark it dirty); the deliveries
        that settle within ``SETTLE_SAVE_DELAY_S`` of each other share one save."""
        while not stop.is_set():
            await _first(self._dirty, stop)
            await _wait(stop, SETTLE_SAVE_DELAY_S)
            if self._dirty.is_set():
                await self._save()

    async def send_test(self, now: float | None = None) -> list[str]:
        """Send a test notification to every target now; the failures, each naming its (redacted) target."""
        at = time.time() if now is None else now
        return await self._delivery.send_now(test_message(self._delivery_policy.installation, at))

    # -- the outbox ------------------------------------------------------------------------------------------

    def _owe(self, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            owed = frozenset(t.ident for t in self._delivery.targets if t.accepts(n))
            if owed:
                self._outbox[n.ident] = Owed(n, owed)
        self._delivery.enqueue(notifications)

    def _requeue_outbox(self) -> None:
        known = {t.ident for t in self._delivery.targets}
        for ident, owed in list(self._outbox.items()):
            targets = owed.targets & known
            if not targets:
                del self._outbox[ident]
                continue
            self._outbox[ident] = replace(owed, targets=targets)
            self._delivery.enqueue([owed.notification], only=targets)
        if self._outbox:
            log.info("alert_outbox_resumed", notifications=len(self._outbox))

    def _settled(self, target: AlertTarget, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            owed = self._outbox.get(n.ident)
            if owed is None:
                continue
            rest = owed.targets - {target.ident}
            if rest:
                self._outbox[n.ident] = replace(owed, targets=rest)
            else:
                del self._outbox[n.ident]
        self._dirty.set()

    async def _save(self) -> None:
        self._dirty.clear()
        outbox = tuple(sorted(self._outbox.values(), key=lambda o: o.notification.at))
        try:
            await self._store.save(SavedState(dict(self._state), outbox))
        except Exception as e:  # the store logs its own failure; alerting goes on from memory
            log.warning("alert_state_save_failed", error=type(e).__name__)

    def _publish(self) -> None:
        counts = Counter((a.kind.value, a.severity.value) for a in self.open_alerts())
        self._metrics.set_alerts_open(counts)


def test_message(installation: str, at: float) -> Message:
    """The message ``relayd alerts test`` sends: it names the installation and says nothing is wrong."""
    condition = Condition(AlertKind.CONFIG_PROBLEM, "test", Severity.INFO, TEST_MESSAGE)
    return group([Notification(Transition.TEST, Alert(condition, at), at)], installation=installation)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        installation=settings.namespace,
        timeout_s=settings.alert_send_timeout,
        max_attempts=settings.alert_send_attempts,
        backoff=Backoff(base=settings.alert_retry_base, factor=2.0, cap=settings.alert_retry_cap),
        queue_max=settings.alert_queue_max,
    )


def _skeleton(state: AlertState) -> dict[str, tuple[Phase, float, float | None, float | None]]:
    """What decides an alert's life (not its wording): a change here is worth a save."""
    return {k: (t.phase, t.since, t.opened_at, t.clear_since) for k, t in state.items()}


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


async def _first(a: asyncio.Event, b: asyncio.Event) -> None:
    """Return when either event is set."""
    if a.is_set() or b.is_set():
        return
    waiters = [asyncio.create_task(a.wait(), name="alert-wait-a"), asyncio.create_task(b.wait(), name="alert-wait-b")]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
