"""Operator endpoints over real sockets: bearer auth, status JSON, events, health, readiness, metrics, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relayd.ids import ScheduleId, SegmentKey, TaskId
from relayd.metrics import Metrics
from relayd.reconcile import Action, ActionKind, Plan
from relayd.store import SegmentState
from relayd.volc.models import TaskStatus
from relayd.web.signing import callback_mac
from relayd.web.views import DaemonPlan, NextAction, ScheduleInfo
from tests.integration.test_web_support import (
    NOW,
    SECRET,
    TOKEN,
    FakeView,
    Harness,
    open_store,
    put_segment,
    segment,
    start_harness,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    store = await open_store(tmp_path)
    await put_segment(
        store, segment("a", 0, NOW - 3600, NOW + 600, task_id=TaskId("1" * 32), state=SegmentState.RUNNING)
    )
    await put_segment(
        store, segment("a", 1, NOW + 600, NOW + 4200, task_id=TaskId("2" * 32), state=SegmentState.SCHEDULED)
    )
    await put_segment(
        store,
        segment(
            "b",
            0,
            NOW - 60,
            NOW + 60,
            state=SegmentState.RETRYING,
            attempts=2,
            last_error="boom",
            last_request_id="rq1",
        ),
    )
    await put_segment(store, segment("gone", 0, NOW - 10, NOW + 10, state=SegmentState.REMOVING))
    view = FakeView(
        infos=[
            ScheduleInfo(ScheduleId("a"), "Alpha", source="/etc/relayd/schedules/a.toml", line=7),
            ScheduleInfo(ScheduleId("b"), "Beta"),
            ScheduleInfo(ScheduleId("c"), problems=("bad",)),
        ],
        actions={SegmentKey("a-1"): NextAction("create", NOW - 3000), SegmentKey("b-0"): NextAction("retry", NOW + 5)},
    )
    harness = await start_harness(store, view=view, platform_window_s=600.0)
    yield harness
    await harness.close()


async def get(h: Harness, path: str, headers: dict[str, str] | None = AUTH) -> tuple[int, Any]:
    async with h.session.get(h.url(path), headers=headers) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize("path", ["/v1/schedules", "/v1/schedules/a", "/v1/events"])
async def test_v1_needs_the_bearer_token(h: Harness, path: str) -> None:
    assert (await get(h, path, headers=None))[0] == 401
    assert (await get(h, path, headers={"Authorization": "Basic abc"}))[0] == 401
    assert (await get(h, path, headers={"Authorization": "Bearer nope"}))[0] == 403
    assert (await get(h, path))[0] == 200


async def test_api_closed_without_configured_token(tmp_path: Path) -> None:
    harness = await start_harness(await open_store(tmp_path), api_token=None)
    try:
        status, body = await get(harness, "/v1/schedules", headers={"Authorization": "Bearer "})
        assert (status, body["error"]) == (403, "api_disabled")
    finally:
        await harness.close()


async def test_schedule_list_shows_current_next_and_failures(h: Harness) -> None:
    status, body = await get(h, "/v1/schedules")
    assert status == 200
    by_id = {s["id"]: s for s in body["schedules"]}
    assert set(by_id) == {"a", "b", "c", "gone"}
    a = by_id["a"]
    assert a["state"] == "running" and a["current"]["key"] == "a-0" and a["next"]["key"] == "a-1"
    assert a["handoff_in_s"] == 600 and a["handoff_at_unix"] == NOW + 600
    assert a["handoff_at"] == "2027-01-15T08:10:00Z"
    assert a["next"]["next_action"]["action"] == "create"
    b = by_id["b"]
    assert b["state"] == "retrying" and b["retrying_segments"] == 1
    assert b["last_error"] == {"message": "boom", "request_id": "rq1", "segment_key": "b-0"}
    assert by_id["c"]["state"] == "invalid" and by_id["c"]["problems"] == ["bad"]
    assert by_id["gone"]["declared"] is False and by_id["gone"]["state"] == "removed"


async def test_schedule_detail_lists_segments_in_order(h: Harness) -> None:
    status, body = await get(h, "/v1/schedules/a")
    assert status == 200
    assert [s["key"] for s in body["segments"]] == ["a-0", "a-1"]
    first = body["segments"][0]
    assert first["window"]["start_unix"] == NOW - 3600 and first["window"]["end"].endswith("Z")
    assert first["task_id"] == "1" * 32 and first["ends_in_s"] == 600


async def test_schedule_detail_shows_file_and_line_platform_status_and_the_daemons_plan(h: Harness) -> None:
    view = h.view
    view.statuses[SegmentKey("a-0")] = TaskStatus.ACTIVE
    record = h.store.segment(SegmentKey("a-1"))
    assert record is not None
    view.plans[ScheduleId("a")] = DaemonPlan(Plan((Action(ActionKind.CREATE, record),), NOW + 30), NOW - 5)
    status, body = await get(h, "/v1/schedules/a")
    assert status == 200
    assert (body["schedule"]["source"], body["schedule"]["line"]) == ("/etc/relayd/schedules/a.toml", 7)
    statuses = [(s["platform_status"], s["platform_status_label"]) for s in body["segments"]]
    assert statuses == [("active", "生效中"), (None, None)]
    plan = body["plan_live"]
    assert plan["source"] == "daemon" and plan["listed_at_unix"] == NOW - 5 and plan["wake_at_unix"] == NOW + 30
    assert plan["actions"] == [
        {"action": "create", "segment": "a-1", "title": record.title, "task_id": "2" * 32, "reason": "refresh"}
    ]
    assert (await get(h, "/v1/schedules/b"))[1]["plan_live"] is None


async def test_unknown_schedule_is_404(h: Harness) -> None:
    status, body = await get(h, "/v1/schedules/nope")
    assert (status, body["error"]) == (404, "not_found")


async def test_events_filtered_and_limited(h: Harness) -> None:
    for i in range(3):
        url = h.url(f"/v1/callbacks/a-0/{callback_mac(SECRET, SegmentKey('a-0'))}")
        async with h.session.post(url, json={"TaskId": "1" * 32, "EventType": "start", "n": i}) as r:
            assert r.status == 200
    status, body = await get(h, "/v1/events?schedule=a&limit=2")
    assert status == 200
    assert [json.loads(e["raw"])["n"] for e in body["events"]] == [2, 1]
    assert body["next_before"] == body["events"][-1]["id"]
    _, rest = await get(h, f"/v1/events?schedule=a&limit=2&before={body['next_before']}")
    assert [json.loads(e["raw"])["n"] for e in rest["events"]] == [0]
    assert (await get(h, "/v1/events?schedule=b"))[1]["events"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=100000", "before=-1"])
async def test_bad_event_query_is_400(h: Harness, query: str) -> None:
    status, body = await get(h, f"/v1/events?{query}")
    assert (status, body["error"]) == (400, "bad_request")


async def test_healthz_needs_no_token(h: Harness) -> None:
    assert await get(h, "/healthz", headers=None) == (200, {"alive": True})


async def test_readiness_flips_with_platform_and_config(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await get(h, "/readyz", headers=None) == (200, {"ready": True})
    h.view.clock = NOW + 601
    h.view.error = "InternalError"
    status, body = await get(h, "/readyz", headers=None)
    assert status == 503 and body["ready"] is False
    assert body["reasons"] == ["no successful platform call for 601 s (last error: InternalError)"]
    h.view.loaded = False
    monkeypatch.setattr(type(h.store), "healthy", property(lambda self: False))  # as after a write error
    assert len((await get(h, "/readyz", headers=None))[1]["reasons"]) == 3


async def test_readiness_waits_for_the_first_reconcile_pass(h: Harness) -> None:
    # Everything else is fine (store, config, a platform call): only the start-up phase is not over.
    h.view.started = False
    status, body = await get(h, "/readyz", headers=None)
    assert (status, body) == (503, {"ready": False, "reasons": ["starting: first reconcile pass"]})
    assert (await get(h, "/healthz", headers=None))[0] == 200  # alive all along
    h.view.started = True
    assert await get(h, "/readyz", headers=None) == (200, {"ready": True})


async def test_readiness_follows_the_api_observer(tmp_path: Path) -> None:
    clock = [NOW]
    metrics = Metrics()
    observer = metrics.api_observer(clock=lambda: clock[0])

    class ObservedView(FakeView):
        def last_platform_success(self) -> float | None:
            return observer.last_ok

        def platform_error(self) -> str | None:
            return observer.last_error

    view = ObservedView(clock=NOW, last_ok=None)
    harness = await start_harness(await open_store(tmp_path), view=view, platform_window_s=60.0)
    try:
        assert (await get(harness, "/readyz", headers=None))[0] == 503
        observer.on_call("ListPullToPushTaskV2", "ok", 0.01, 1)
        assert (await get(harness, "/readyz", headers=None))[0] == 200
        view.clock = NOW + 120  # the platform becomes unreachable: every call fails from here on
        observer.on_call("ListPullToPushTaskV2", "ServiceUnavailableTemp", 0.01, 1)
        status, body = await get(harness, "/readyz", headers=None)
        assert status == 503 and "ServiceUnavailableTemp" in body["reasons"][0]
    finally:
        await harness.close()


async def test_metrics_endpoint_parses(h: Harness) -> None:
    h.metrics.set_sources(segment_counts=lambda: {"running": 1, "retrying": 1}, next_handoff=lambda: 600.0)
    h.metrics.api_observer().on_call("CreatePullToPushTask", "FlowLimitExceeded", 0.2, 2)
    async with h.session.get(h.url("/metrics")) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    segments = {s.labels["state"]: s.value for s in families["relayd_segments"].samples}
    assert segments == {"running": 1.0, "retrying": 1.0}
    assert families["relayd_next_handoff_seconds"].samples[0].value == 600.0
    throttles = [s for s in families["relayd_api_throttles"].samples if s.name.endswith("_total")]
    assert throttles[0].labels == {"action": "CreatePullToPushTask"} and throttles[0].value == 1.0


async def test_unknown_route_is_json_404(h: Harness) -> None:
    status, body = await get(h, "/nowhere", headers=None)
    assert status == 404 and body["error"] == "not_found"


async def test_handler_crash_is_json_500_without_traceback(h: Harness) -> None:
    h.view.fail_with = RuntimeError("secret internals")
    async with h.session.get(h.url("/v1/schedules"), headers=AUTH) as r:
        text = await r.text()
        assert r.status == 500
    assert json.loads(text) == {"error": "internal", "message": "internal error"}
    assert "secret internals" not in text and "Traceback" not in text


async def test_wrong_method_is_json_405(h: Harness) -> None:
    async with h.session.delete(h.url("/healthz")) as r:
        assert r.status == 405 and (await r.json())["error"] == "method_not_allowed"
