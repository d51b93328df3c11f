"""Prometheus metrics for relayd, in one object that owns its own registry.

Why an object and not module globals: prometheus-client's default registry is process-wide, so two daemons (or
two tests) in one process would collide on metric names. ``Metrics`` creates a private ``CollectorRegistry`` and
every metric lives in it; ``render()`` produces the text exposition for ``GET /metrics``.

Two kinds of values:

* **Events** (counters, histograms) are pushed by the code that sees them: the LiveClient through the observer
  from ``api_observer()``, the reconciler through ``restart()`` / ``observe_reconcile()``, the callback receiver
  through ``callback()``, the loader through ``config_load_errors()``.
* **Levels** that already live elsewhere (segments by state, seconds until the next hand-off) are *read* at
  scrape time from callables registered with ``set_sources()``, through a custom collector. No copy can go
  stale and nothing has to remember to update a gauge. Owned tasks by platform status are a level too, but
  only the reconciler sees the platform's task list, so it sets them with ``set_task_statuses()``.
* Stream health: ``relayd_stream_up`` and seconds since the last advance are levels read from the health
  monitor (``set_sources(stream_levels=monitor.levels)``); stalls and probe errors are events the monitor pushes
  through ``stream_stalled()`` / ``stream_probe_error()``.

Names are ``relayd_*`` with units in them (``_seconds``, ``_total``). The observer also remembers when the
platform last answered successfully, which the daemon's readiness check uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from relayd.volc.codes import THROTTLING_CODES

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of ``render()``'s output (Prometheus text format 0.0.4)."""

API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
HANDOFF_BUCKETS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

SegmentCounts = Callable[[], Mapping[str, int]]
NextHandoff = Callable[[], float | None]
StreamLevels = Callable[[], Mapping[str, tuple[bool, float | None]]]
"""schedule id -> (stream up, seconds since its last advance) for every stream being judged."""


@dataclass
class ApiObserver:
    """The LiveClient's observer: one ``on_call`` per attempt (``outcome`` is "ok" or the platform error code).

    Counts calls, latency, throttles (``outcome`` in the throttling codes) and retries (``attempt > 1``), and
    remembers the wall-clock time of the last success and the last error code for readiness.
    """

    metrics: Metrics
    clock: Callable[[], float] = time.time
    last_ok: float | None = None
    last_error: str | None = None

    def on_call(self, action: str, outcome: str, seconds: float, attempt: int) -> None:
        m = self.metrics
        m.api_calls.labels(action=action, code=outcome).inc()
        m.api_latency.labels(action=action).observe(seconds)
        if attempt > 1:
            m.api_retries.labels(action=action).inc()
        if outcome in THROTTLING_CODES:
            m.api_throttles.labels(action=action).inc()
        if outcome == "ok":
            self.last_ok = self.clock()
            self.last_error = None
        else:
            self.last_error = outcome


class _LevelCollector(Collector):
    """Reads levels owned elsewhere at scrape time; a failing source yields no sample rather than a 500."""

    def __init__(self) -> None:
        self.segment_counts: SegmentCounts | None = None
        self.next_handoff: NextHandoff | None = None
        self.stream_levels: StreamLevels | None = None

    def collect(self) -> Iterator[Metric]:
        segments = GaugeMetricFamily("relayd_segments", "Segments in the store by state.", labels=["state"])
        for state, count in sorted(self._counts().items()):
            segments.add_metric([state], count)
        yield segments
        handoff = self._handoff()
        if handoff is not None:
            yield GaugeMetricFamily(
                "relayd_next_handoff_seconds", "Seconds until the next segment hand-off (negative = overdue).", handoff
            )
        yield from self._streams()

    def _streams(self) -> Iterator[Metric]:
        try:
            levels = self.stream_levels() if self.stream_levels else {}
        except Exception:
            levels = {}
        up = GaugeMetricFamily(
            "relayd_stream_up", "1 while the playback advances, 0 when stalled or unknown.", labels=["schedule"]
        )
        since = GaugeMetricFamily(
            "relayd_stream_seconds_since_advance", "Seconds since the playback last advanced.", labels=["schedule"]
        )
        for schedule, (is_up, seconds) in sorted(levels.items()):
            up.add_metric([schedule], 1.0 if is_up else 0.0)
            if seconds is not None:
                since.add_metric([schedule], seconds)
        yield up
        yield since

    def _counts(self) -> Mapping[str, int]:
        try:
            return self.segment_counts() if self.segment_counts else {}
        except Exception:  # a scrape must never take the endpoint down
            return {}

    def _handoff(self) -> float | None:
        try:
            return self.next_handoff() if self.next_handoff else None
        except Exception:
            return None


class Metrics:
    """All relayd metrics in a private registry. Construct one per daemon (and per test)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._levels = _LevelCollector()
        self.registry.register(self._levels)
        self._build_task_metrics()
        self._build_api_metrics()
        self._build_engine_metrics()
        self._build_alert_metrics()
        self._build_leader_metrics()

    def _build_task_metrics(self) -> None:
        r = self.registry
        self.tasks = Gauge("relayd_owned_tasks", "Owned platform tasks by platform status.", ["status"], registry=r)
        self.restarts = Counter(
            "relayd_restarts_total", "Restart attempts by kind and outcome.", ["kind", "outcome"], registry=r
        )

    def _build_api_metrics(self) -> None:
        r = self.registry
        self.api_calls = Counter(
            "relayd_api_calls_total", "Platform API attempts by action and result code.", ["action", "code"], registry=r
        )
        self.api_latency = Histogram(
            "relayd_api_call_duration_seconds",
            "Platform API attempt latency.",
            ["action"],
            buckets=API_BUCKETS,
            registry=r,
        )
        self.api_throttles = Counter("relayd_api_throttles_total", "Throttled API attempts.", ["action"], registry=r)
        self.api_retries = Counter(
            "relayd_api_retries_total", "API attempts that were retries.", ["action"], registry=r
        )

    def _build_engine_metrics(self) -> None:
        r = self.registry
        self.callbacks = Counter(
            "relayd_callbacks_total", "Status callbacks received by result.", ["result"], registry=r
        )
        self._callback_children: dict[str, Counter] = {}
        self.reconcile_duration = Histogram(
            "relayd_reconcile_duration_seconds",
            "Duration of one schedule reconcile.",
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.handoff_gaps = Histogram(
            "relayd_handoff_gap_seconds",
            "Seconds a destination had no task at a hand-off between chained segments.",
            buckets=HANDOFF_BUCKETS,
            registry=r,
        )
        self.loop_lag = Gauge("relayd_event_loop_lag_seconds", "Latest measured event-loop lag.", registry=r)
        self.loop_lag_hist = Histogram(
            "relayd_event_loop_lag_distribution_seconds", "Event-loop lag samples.", buckets=LAG_BUCKETS, registry=r
        )
        self.config_errors = Counter(
            "relayd_config_load_errors_total", "Schedule files rejected by the loader.", registry=r
        )
        self.config_problems = Gauge(
            "relayd_config_problems", "Problems in the currently loaded config directory.", registry=r
        )
        self.stream_stalls = Counter(
            "relayd_stream_stalls_total", "Playback stalls detected by the health monitor.", ["schedule"], registry=r
        )
        self.stream_probe_errors = Counter(
            "relayd_stream_probe_errors_total",
            "Health probes that could not look at the playback, by kind.",
            ["schedule", "kind"],
            registry=r,
        )
        self.removals_held = Gauge(
            "relayd_config_removals_held",
            "Schedules the removal guard keeps running although the config no longer declares them.",
            registry=r,
        )

    def _build_alert_metrics(self) -> None:
        r = self.registry
        self.alerts_open = Gauge(
            "relayd_alerts_open", "Open alerts by kind and severity.", ["kind", "severity"], registry=r
        )
        self.alert_deliveries = Counter(
            "relayd_alert_deliveries_total",
            "Alert messages by target (redacted) and result: sent, error (will retry), gave_up.",
            ["target", "result"],
            registry=r,
        )
        self.alert_dropped = Counter(
            "relayd_alert_notifications_dropped_total",
            "Notifications dropped because a target's queue was full (oldest first).",
            ["target"],
            registry=r,
        )

    # -- sources read at scrape time ---------------------------------------------------------------------------

    def set_sources(
        self,
        *,
        segment_counts: SegmentCounts | None = None,
        next_handoff: NextHandoff | None = None,
        stream_levels: StreamLevels | None = None,
    ) -> None:
        """Register callables read at every scrape: segment counts by state, seconds until the next hand-off,
        stream health levels."""
        if segment_counts is not None:
            self._levels.segment_counts = segment_counts
        if next_handoff is not None:
            self._levels.next_handoff = next_handoff
        if stream_levels is not None:
            self._levels.stream_levels = stream_levels

    # -- events ------------------------------------------------------------------------------------------------

    def api_observer(self, clock: Callable[[], float] = time.time) -> ApiObserver:
        """The observer to hand to LiveClient (``on_call(action, outcome, seconds, attempt)``)."""
        return ApiObserver(self, clock)

    def set_task_statuses(self, counts: Mapping[str, int]) -> None:
        """Replace the owned-tasks-by-platform-status gauge with the counts from the latest task list."""
        self.tasks.clear()
        for status, count in counts.items():
            self.tasks.labels(status=status).set(count)

    def restart(self, kind: str, outcome: str) -> None:
        """Count one restart attempt (kind: continue/relaunch/restart/recreate; outcome: ok/error code/gave_up)."""
        self.restarts.labels(kind=kind, outcome=outcome).inc()

    def callback(self, result: str) -> None:
        child = self._callback_children.get(result)
        if child is None:  # labels() takes a lock and builds a tuple; callbacks are the hot path
            child = self._callback_children[result] = self.callbacks.labels(result=result)
        child.inc()

    def handoff_gap(self, seconds: float) -> None:
        self.handoff_gaps.observe(max(0.0, seconds))

    def observe_reconcile(self, seconds: float) -> None:
        self.reconcile_duration.observe(seconds)

    def config_load_errors(self, count: int, *, current_problems: int | None = None) -> None:
        """Count rejected files from one load; optionally set the number of problems currently outstanding."""
        if count:
            self.config_errors.inc(count)
        if current_problems is not None:
            self.config_problems.set(current_problems)

    def config_removals_held(self, count: int) -> None:
        """Set how many schedule removals the removal guard holds back now."""
        self.removals_held.set(count)

    def set_alerts_open(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Replace the open-alerts gauge with counts by (kind, severity)."""
        self.alerts_open.clear()
        for (kind, severity), count in counts.items():
            self.alerts_open.labels(kind=kind, severity=severity).set(count)

    def alert_delivery(self, target: str, result: str) -> None:
        """Count one alert message for ``target`` (a redacted label): sent, error or gave_up."""
        self.alert_deliveries.labels(target=target, result=result).inc()

    def alert_dropped_notifications(self, target: str, count: int) -> None:
        self.alert_dropped.labels(target=target).inc(count)

    def stream_stalled(self, schedule_id: str) -> None:
        """Count one stall the health monitor detected."""
        self.stream_stalls.labels(schedule=schedule_id).inc()

    def stream_probe_error(self, schedule_id: str, kind: str) -> None:
        """Count one health probe that failed (kind: dns, connect, tls, http_status, parse, timeout, program)."""
        self.stream_probe_errors.labels(schedule=schedule_id, kind=kind).inc()

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.set(seconds)
        self.loop_lag_hist.observe(seconds)

    def _build_leader_metrics(self) -> None:
        r = self.registry
        self.leader = Gauge("relayd_leader", "1 while this instance leads and may act on the platform.", registry=r)
        self.leadership_changes = Counter(
            "relayd_leadership_changes", "This instance became leader or stepped down.", ["change"], registry=r
        )

    def set_leader_source(self, acting: Callable[[], bool]) -> None:
        """``relayd_leader`` reads ``acting`` at each scrape (the gate can close by the clock alone)."""
        self.leader.set_function(lambda: 1.0 if acting() else 0.0)

    def leadership_change(self, change: str) -> None:
        """Count a change of role: ``elected`` (lease taken) or ``deposed`` (lease lost or unconfirmed)."""
        self.leadership_changes.labels(change=change).inc()

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)


async def loop_lag_monitor(metrics: Metrics, stop: asyncio.Event, interval: float = 0.5) -> None:
    """Sleep ``interval`` repeatedly and record how late each wake-up was: the event loop's scheduling lag.

    Runs until ``stop`` is set. The wait is on the event itself, so stopping is immediate.
    """
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            metrics.observe_loop_lag(max(0.0, loop.time() - started - interval))
