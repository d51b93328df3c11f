"""The web console's server side over real sockets: sign-in, cookie, CSRF and origin checks, headers, the
segments addition to the status API, the action endpoints (with a fake provider) and the live stream."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs
from yarl import URL

from relayd.ids import ScheduleId, SegmentKey
from relayd.store import Event, SegmentState
from relayd.web.console.sessions import SESSION_COOKIE
from relayd.web.views import ScheduleInfo
from tests.integration.test_web_support import NOW, TOKEN, FakeView, Harness, open_store, segment, start_harness


@dataclass
class FakeActions:
    retried: list[SegmentKey] = field(default_factory=list)
    released: int = 0
    held: list[ScheduleId] = field(default_factory=lambda: [ScheduleId("gone")])

    async def retry_now(self, key: SegmentKey) -> bool:
        self.retried.append(key)
        return key == "a-1"

    async def release_removals(self) -> Sequence[ScheduleId]:
        self.released += 1
        return list(self.held)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[tuple[Harness, FakeActions]]:
    store = await open_store(tmp_path)
    actions = FakeActions()
    view = FakeView(infos=[ScheduleInfo(ScheduleId("a"), title="A")])
    h = await start_harness(store, view=view, actions=actions)
    yield h, actions
    await h.close()


def browser_session() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1 (aiohttp's default jar ignores cookies of IP hosts)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def origin(h: Harness) -> dict[str, str]:
    return {"Origin": h.base, "Sec-Fetch-Site": "same-origin"}


async def sign_in(h: Harness, session: aiohttp.ClientSession) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    async with session.post(
        h.url("/login"), data={"token": TOKEN, "next": "/"}, headers=origin(h), allow_redirects=False
    ) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/"
        cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie and TOKEN not in cookie
    async with session.get(h.url("/")) as resp:
        assert resp.status == 200
        page = await resp.text()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def test_pages_redirect_to_login_without_a_session_and_carry_strict_headers(harness) -> None:
    h, _ = harness
    async with h.session.get(h.url("/"), allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"].startswith("/login")
    async with h.session.get(h.url("/login")) as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script>" not in await resp.text()  # no inline scripts, only src= and a JSON data block


async def test_pages_take_the_bearer_header_too_and_refuse_a_wrong_one(harness) -> None:
    h, _ = harness
    for path in ("/", "/schedules/a"):
        async with h.session.get(h.url(path), headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 200 and resp.content_type == "text/html", path
            assert SESSION_COOKIE not in resp.cookies  # a header is not a sign-in: no session is made
        wrong = {"Authorization": "Bearer not-the-token"}
        async with h.session.get(h.url(path), headers=wrong, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/login"), path


async def test_a_wrong_token_or_a_cross_site_form_gets_no_session(harness) -> None:
    h, _ = harness
    async with h.session.post(h.url("/login"), data={"token": "nope"}, headers=origin(h)) as resp:
        assert resp.status == 403 and SESSION_COOKIE not in resp.cookies
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    async with h.session.post(h.url("/login"), data={"token": TOKEN}, headers=evil) as resp:
        assert resp.status == 403 and SESSION_COOKIE not in resp.cookies


async def test_the_session_reads_the_status_api_and_the_bearer_header_still_works(harness) -> None:
    h, _ = harness
    await h.store.put(segment("a", 0, NOW - 60, NOW + 60, state=SegmentState.RUNNING, body={"DstAddr": "rtmp://d"}))
    await h.store.put(segment("a", 1, NOW + 60, NOW + 120, body={"DstAddr": "rtmp://d"}))
    async with browser_session() as browser:
        await sign_in(h, browser)
        async with browser.get(h.url("/v1/schedules?segments=1")) as resp:
            assert resp.status == 200
            body = await resp.json()
    [item] = body["schedules"]
    assert [s["key"] for s in item["segments"]] == ["a-0", "a-1"]
    assert all(s["warnings"] == [] for s in item["segments"])
    async with h.session.get(h.url("/v1/schedules")) as resp:
        assert resp.status == 401  # no cookie, no header: exactly as before
    async with h.session.get(h.url("/v1/schedules"), headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 403
    async with h.session.get(h.url("/v1/schedules"), headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200 and "segments" not in (await resp.json())["schedules"][0]


async def test_the_timelines_brief_read_carries_what_a_bar_needs_and_agrees_with_the_full_one(harness) -> None:
    h, _ = harness
    await h.store.put(segment("a", 0, NOW, NOW + 100, state=SegmentState.RUNNING, task_id="t0", body={"DstAddr": "x"}))
    await h.store.put(segment("a", 1, NOW + 100, NOW + 200, body={"DstAddr": "x"}))
    await h.store.put(segment("b", 0, NOW + 50, NOW + 150, body={"DstAddr": "x"}))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bodies = {}
    for shape in ("1", "brief"):
        async with h.session.get(h.url(f"/v1/schedules?segments={shape}"), headers=headers) as resp:
            assert resp.status == 200
            bodies[shape] = await resp.json()
    drawn = {"key", "index", "occurrence", "state", "task_id", "window", "warnings", "overlaps"}
    for full, brief in zip(bodies["1"]["schedules"], bodies["brief"]["schedules"], strict=True):
        assert "current" in full and "current" not in brief and "next" not in brief
        assert {k: v for k, v in full.items() if k not in ("current", "next", "segments")} == {
            k: v for k, v in brief.items() if k != "segments"
        }
        for f, b in zip(full["segments"], brief["segments"], strict=True):
            assert set(b) == drawn
            assert {k: f[k] for k in drawn - {"window"}} == {k: b[k] for k in drawn - {"window"}}
            assert b["window"] == {"start_unix": f["window"]["start_unix"], "end_unix": f["window"]["end_unix"]}
    assert all(s["overlaps"] for i in bodies["brief"]["schedules"] for s in i["segments"])  # each overlaps b-0
    # Asked for b alone (a fresh store change first, so nothing is cached): its marks are worked out over the
    # segments on its destination only, and still name the overlaps with a, which was not asked for.
    await h.store.put(segment("c", 0, NOW, NOW + 10, body={"DstAddr": "elsewhere"}))
    async with h.session.get(h.url("/v1/schedules?segments=brief&id=b"), headers=headers) as resp:
        [only_b] = (await resp.json())["schedules"]
    [full_b] = [i for i in bodies["brief"]["schedules"] if i["id"] == "b"]
    assert only_b["segments"] == full_b["segments"]


async def test_overlapping_segments_on_one_destination_are_flagged(harness) -> None:
    h, _ = harness
    await h.store.put(segment("a", 0, NOW, NOW + 100, body={"DstAddr": "rtmp://same"}))
    await h.store.put(segment("b", 0, NOW + 50, NOW + 150, body={"DstAddr": "rtmp://same"}))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with h.session.get(h.url("/v1/schedules?segments=1"), headers=headers) as resp:
        body = await resp.json()
    flags = {s["key"]: s["warnings"] for item in body["schedules"] for s in item["segments"]}
    assert flags == {"a-0": ["overlap"], "b-0": ["overlap"]}
    shared = [{"start_unix": int(NOW) + 50, "end_unix": int(NOW) + 100}]
    assert [s["overlaps"] for item in body["schedules"] for s in item["segments"]] == [shared, shared]


async def test_actions_need_csrf_and_same_origin_with_a_session(harness) -> None:
    h, actions = harness
    async with browser_session() as browser:
        csrf = await sign_in(h, browser)
        url = h.url("/v1/segments/a-1/retry")
        async with browser.post(url, headers=origin(h)) as resp:
            assert resp.status == 403 and (await resp.json())["error"] == "csrf"
        cross = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf}
        async with browser.post(url, headers=cross) as resp:
            assert resp.status == 403 and (await resp.json())["error"] == "cross_site"
        assert actions.retried == []
        async with browser.post(url, headers={**origin(h), "X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200 and (await resp.json())["segment_key"] == "a-1"
        async with browser.post(h.url("/v1/segments/zz-9/retry"), headers={**origin(h), "X-CSRF-Token": csrf}) as resp:
            assert resp.status == 409
        async with browser.post(h.url("/v1/removals/release"), headers={**origin(h), "X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200 and (await resp.json())["released"] == ["gone"]
    assert actions.retried == ["a-1", "zz-9"] and actions.released == 1
    async with h.session.post(h.url("/v1/removals/release"), headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200  # the token needs no CSRF token: a browser cannot attach it cross-site
    assert actions.released == 2


async def test_logout_revokes_the_session(harness) -> None:
    h, _ = harness
    async with browser_session() as browser:
        csrf = await sign_in(h, browser)
        stolen = browser.cookie_jar.filter_cookies(URL(h.url("/")))[SESSION_COOKIE].value
        async with browser.post(h.url("/logout"), data={"csrf": csrf}, headers=origin(h), allow_redirects=False) as r:
            assert r.status == 303
    async with h.session.get(h.url("/v1/schedules"), cookies={SESSION_COOKIE: stolen}) as resp:
        assert resp.status == 401


async def test_actions_without_a_provider_answer_unavailable(tmp_path: Path) -> None:
    h = await start_harness(await open_store(tmp_path))
    try:
        async with h.session.post(h.url("/v1/removals/release"), headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 503 and (await r.json())["error"] == "action_unavailable"
    finally:
        await h.close()


async def test_the_stream_names_the_schedules_that_changed(harness) -> None:
    h, _ = harness
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with h.session.get(h.url("/v1/stream"), headers=headers) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5) == b"retry: 1000\nevent: hello\ndata: {}\n\n"
        await h.store.put(segment("a", 0, NOW, NOW + 60))
        await h.store.put(segment("b", 0, NOW, NOW + 60))
        chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        assert chunk.startswith(b"event: changed\ndata: ")
        first = json.loads(chunk.split(b"data: ", 1)[1])
        assert first["overview"] is False and set(first["schedules"]) <= {"a", "b"} and first["schedules"]
        if set(first["schedules"]) != {"a", "b"}:  # the two writes fell either side of a tick
            chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
            assert set(first["schedules"]) | set(json.loads(chunk.split(b"data: ", 1)[1])["schedules"]) == {"a", "b"}
        await h.store.add_event(Event(ts=NOW, kind="callback", schedule_id=ScheduleId("a")))
        chunk = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        assert json.loads(chunk.split(b"data: ", 1)[1]) == {"schedules": [], "overview": False}


async def test_only_the_asked_schedules_are_read_with_flags_from_every_schedule(harness) -> None:
    h, _ = harness
    await h.store.put(segment("a", 0, NOW, NOW + 100, body={"DstAddr": "rtmp://same"}))
    await h.store.put(segment("b", 0, NOW + 50, NOW + 150, body={"DstAddr": "rtmp://same"}))
    await h.store.put(segment("c", 0, NOW, NOW + 100))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with h.session.get(h.url("/v1/schedules?segments=1&id=b&id=nope"), headers=headers) as resp:
        body = await resp.json()
    assert [s["id"] for s in body["schedules"]] == ["b"]
    assert body["schedules"][0]["segments"][0]["warnings"] == ["overlap"]  # the overlap is with "a", not asked
    many = "&".join(f"id=s{i}" for i in range(501))
    async with h.session.get(h.url("/v1/schedules?segments=1&" + many), headers=headers) as resp:
        assert resp.status == 400


async def test_assets_are_served_from_the_package_with_the_same_headers(harness) -> None:
    h, _ = harness
    async with h.session.get(h.url("/console/static/timeline.js")) as resp:
        assert resp.status == 200 and resp.content_type == "text/javascript"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        etag = resp.headers["ETag"]
    async with h.session.get(h.url("/console/static/timeline.js"), headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with h.session.get(h.url("/console/static/../app.py")) as resp:
        assert resp.status == 404


async def test_deleted_segments_of_the_last_week_stay_on_the_timeline_in_their_final_state(harness) -> None:
    h, _ = harness
    deleted = {"state": SegmentState.DELETED, "deleted_at": NOW - 3600}
    await h.store.put(segment("a", 0, NOW - 9 * 86400, NOW - 8 * 86400, **deleted))  # older than a week: dropped
    await h.store.put(segment("a", 1, NOW - 7200, NOW - 3600, task_id="t1", last_error="Boom", **deleted))
    await h.store.put(segment("a", 2, NOW - 3600, NOW + 3600, state=SegmentState.RUNNING))
    await h.store.put(segment("gone", 0, NOW - 7200, NOW - 3600, **deleted))  # an undeclared schedule's history
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for query in ("segments=1", "segments=1&id=a"):
        async with h.session.get(h.url("/v1/schedules?" + query), headers=headers) as resp:
            body = await resp.json()
        assert [s["id"] for s in body["schedules"]] == ["a"]
        [item] = body["schedules"]
        assert [(s["key"], s["state"]) for s in item["segments"]] == [("a-1", "deleted"), ("a-2", "running")]
        assert item["segments_total"] == 1  # the summary still counts live segments only


async def test_each_action_is_logged_with_what_who_and_from_where(harness) -> None:
    h, _ = harness
    with capture_logs() as logs:
        async with browser_session() as browser:
            csrf = await sign_in(h, browser)
            async with browser.post(h.url("/v1/segments/a-1/retry"), headers={**origin(h), "X-CSRF-Token": csrf}):
                pass
            cookie = next(c for c in browser.cookie_jar if c.key == SESSION_COOKIE).value
        async with h.session.post(h.url("/v1/removals/release"), headers={"Authorization": f"Bearer {TOKEN}"}):
            pass
    actions = [entry for entry in logs if entry["event"] == "console_action"]
    assert [(a["action"], a["remote"]) for a in actions] == [
        ("retry_now", "127.0.0.1"),
        ("release_removals", "127.0.0.1"),
    ]
    retry, release = actions
    assert retry["segment_key"] == "a-1" and retry["done"] is True
    assert retry["principal"].startswith("session:") and retry["principal"][8:] in cookie
    assert release["released"] == ["gone"] and release["principal"] == "token"
    assert TOKEN not in repr(actions)
