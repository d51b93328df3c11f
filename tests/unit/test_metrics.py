"""The Metrics registry: observer accounting, scrape-time sources, text format, loop lag."""

from __future__ import annotations

import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families

from relayd.metrics import Metrics, loop_lag_monitor


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_two_instances_do_not_collide() -> None:
    a, b = Metrics(), Metrics()
    a.callback("accepted")
    assert samples(a)[("relayd_callbacks_total", (("result", "accepted"),))] == 1.0
    assert ("relayd_callbacks_total", (("result", "accepted"),)) not in samples(b)


def test_observer_counts_calls_retries_throttles_and_tracks_success() -> None:
    clock = [100.0]
    m = Metrics()
    obs = m.api_observer(clock=lambda: clock[0])
    obs.on_call("CreatePullToPushTask", "FlowLimitExceeded", 0.05, 1)
    obs.on_call("CreatePullToPushTask", "ok", 0.2, 2)
    clock[0] = 200.0
    obs.on_call("ListPullToPushTaskV2", "InternalError", 1.0, 1)
    s = samples(m)
    assert s[("relayd_api_calls_total", (("action", "CreatePullToPushTask"), ("code", "ok")))] == 1
    assert s[("relayd_api_throttles_total", (("action", "CreatePullToPushTask"),))] == 1
    assert s[("relayd_api_retries_total", (("action", "CreatePullToPushTask"),))] == 1
    assert s[("relayd_api_call_duration_seconds_count", (("action", "CreatePullToPushTask"),))] == 2
    assert s[("relayd_api_call_duration_seconds_bucket", (("action", "CreatePullToPushTask"), ("le", "0.1")))] == 1
    assert (obs.last_ok, obs.last_error) == (100.0, "InternalError")


def test_sources_are_read_at_scrape_time_and_failures_are_contained() -> None:
    m = Metrics()
    counts = {"running": 3}
    m.set_sources(segment_counts=lambda: counts, next_handoff=lambda: 42.0)
    assert samples(m)[("relayd_segments", (("state", "running"),))] == 3
    counts["failed"] = 1
    assert samples(m)[("relayd_segments", (("state", "failed"),))] == 1

    def broken() -> dict[str, int]:
        raise RuntimeError("store closed")

    m.set_sources(segment_counts=broken)
    s = samples(m)
    assert not any(name == "relayd_segments" for name, _ in s) and s[("relayd_next_handoff_seconds", ())] == 42.0


def test_task_statuses_are_replaced_not_accumulated() -> None:
    m = Metrics()
    m.set_task_statuses({"生效中": 2, "停用": 1})
    m.set_task_statuses({"生效中": 3})
    s = samples(m)
    assert s[("relayd_owned_tasks", (("status", "生效中"),))] == 3
    assert ("relayd_owned_tasks", (("status", "停用"),)) not in s


def test_engine_metrics() -> None:
    m = Metrics()
    m.restart("relaunch", "ok")
    m.observe_reconcile(0.02)
    m.config_load_errors(2, current_problems=2)
    m.config_load_errors(0, current_problems=0)
    s = samples(m)
    assert s[("relayd_restarts_total", (("kind", "relaunch"), ("outcome", "ok")))] == 1
    assert s[("relayd_reconcile_duration_seconds_count", ())] == 1
    assert s[("relayd_config_load_errors_total", ())] == 2
    assert s[("relayd_config_problems", ())] == 0


async def test_loop_lag_monitor_sees_a_blocked_loop() -> None:
    m = Metrics()
    stop = asyncio.Event()
    monitor = asyncio.create_task(loop_lag_monitor(m, stop, interval=0.02))
    await asyncio.sleep(0)
    time.sleep(0.15)  # deliberately block the loop
    lag_sum = ("relayd_event_loop_lag_distribution_seconds_sum", ())
    async with asyncio.timeout(5):
        while samples(m)[lag_sum] < 0.1:
            await asyncio.sleep(0.01)
    stop.set()
    async with asyncio.timeout(1):
        await monitor
    assert samples(m)[("relayd_event_loop_lag_seconds", ())] >= 0.0
    assert monitor.done()


def test_handoff_gaps_are_a_histogram() -> None:
    m = Metrics()
    m.handoff_gap(0.0)
    m.handoff_gap(1.0)
    s = samples(m)
    assert s[("relayd_handoff_gap_seconds_count", ())] == 2 and s[("relayd_handoff_gap_seconds_sum", ())] == 1.0
    assert s[("relayd_handoff_gap_seconds_bucket", (("le", "0.0"),))] == 1
