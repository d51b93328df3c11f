"""Stream health metrics: up and seconds since the last advance read at scrape time; stalls and errors counted."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from relayd.metrics import Metrics


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(m.render().decode())
        for s in family.samples
    }


def test_stream_levels_and_counters() -> None:
    m = Metrics()
    levels = {"news": (True, 2.5), "show": (False, None)}
    m.set_sources(stream_levels=lambda: levels)
    m.stream_stalled("show")
    m.stream_probe_error("show", "timeout")
    m.stream_probe_error("show", "timeout")
    s = samples(m)
    assert s[("relayd_stream_up", (("schedule", "news"),))] == 1.0
    assert s[("relayd_stream_up", (("schedule", "show"),))] == 0.0
    assert s[("relayd_stream_seconds_since_advance", (("schedule", "news"),))] == 2.5
    assert ("relayd_stream_seconds_since_advance", (("schedule", "show"),)) not in s
    assert s[("relayd_stream_stalls_total", (("schedule", "show"),))] == 1.0
    assert s[("relayd_stream_probe_errors_total", (("kind", "timeout"), ("schedule", "show")))] == 2.0
    levels.pop("news")
    assert ("relayd_stream_up", (("schedule", "news"),)) not in samples(m)


def test_a_failing_level_source_yields_no_sample() -> None:
    m = Metrics()

    def broken() -> dict[str, tuple[bool, float | None]]:
        raise RuntimeError("monitor gone")

    m.set_sources(stream_levels=broken)
    assert not [k for k in samples(m) if k[0] == "relayd_stream_up"]
