"""The callback endpoint over real sockets: authentication, limits, parsing, recording, de-duplication, hints."""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relayd.ids import SegmentKey, TaskId
from relayd.web.notices import CallbackEvent
from relayd.web.signing import callback_mac, callback_url, sign_for
from tests.integration.test_web_support import NOW, SECRET, Harness, open_store, put_segment, segment, start_harness

AUTH_KEY = "domain-auth-key"
TASK = TaskId("a" * 32)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    store = await open_store(tmp_path)
    await put_segment(store, segment("s1", 0, NOW - 100, NOW + 1000, task_id=TASK))
    harness = await start_harness(store, callback_auth_key=AUTH_KEY, callback_max_age=900.0)
    yield harness
    await harness.close()


def cb_url(h: Harness, key: str = "s1-0", mac: str | None = None) -> str:
    key_ = SegmentKey(key)
    return h.url(f"/v1/callbacks/{key_}/{mac if mac is not None else callback_mac(SECRET, key_)}")


async def post(h: Harness, url: str, data: bytes | str | Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = json.dumps(data, ensure_ascii=False) if isinstance(data, dict) else data
    async with h.session.post(url, data=body, headers={"Content-Type": "application/json", **(headers or {})}) as r:
        return r.status, await r.json(content_type=None)


SIGNED_T = int(NOW) + 600  # Volcengine: t is an expiry, send time + 10 min


def body(event: str = "start", **extra: Any) -> dict[str, Any]:
    """A callback body signed with the harness's auth key (override ``sign``/``t`` to test the check)."""
    signed = {"t": SIGNED_T, "sign": sign_for(AUTH_KEY, SIGNED_T)}
    return {"TaskId": TASK, "Status": "生效中", "EventType": event, "Time": int(NOW), **signed, **extra}


async def recorded(h: Harness, kind: str = "callback") -> list[Any]:
    return list(await h.store.events(kind=kind, limit=100))


async def test_valid_callback_is_recorded_and_hinted(h: Harness) -> None:
    status, answer = await post(h, cb_url(h), body())
    assert (status, answer["result"]) == (200, "accepted")
    events = await recorded(h)
    assert len(events) == 1 and events[0].segment_key == "s1-0" and events[0].task_id == TASK
    assert json.loads(events[0].raw)["Status"] == "生效中"
    assert [(sid, key, n.event) for sid, key, n in h.hints] == [("s1", "s1-0", CallbackEvent.START)]


async def test_callback_url_helper_matches_route(h: Harness) -> None:
    url = callback_url(h.base, SECRET, SegmentKey("s1-0"))
    status, _ = await post(h, url, body())
    assert status == 200


async def test_duplicate_delivery_is_harmless(h: Harness) -> None:
    first = await post(h, cb_url(h), body())
    second = await post(h, cb_url(h), body())
    assert first[1]["result"] == "accepted" and second == (200, {"ok": True, "result": "duplicate"})
    assert len(await recorded(h)) == 1
    assert len(h.hints) == 1


async def test_duplicate_by_event_id_with_different_bytes(h: Harness) -> None:
    await post(h, cb_url(h), body(EventId="e-1"))
    status, answer = await post(h, cb_url(h), body(EventId="e-1", Retry=1))
    assert (status, answer["result"]) == (200, "duplicate")
    assert len(h.hints) == 1


async def test_out_of_order_events_are_all_recorded_as_hints(h: Harness) -> None:
    await post(h, cb_url(h), body("end", Time=int(NOW) + 50, Status="已结束"))
    await post(h, cb_url(h), body("start", Time=int(NOW) + 10))
    assert [n.event for _, _, n in h.hints] == [CallbackEvent.END, CallbackEvent.START]
    assert [n.time for _, _, n in h.hints] == [NOW + 50, NOW + 10]
    assert len(await recorded(h)) == 2


@pytest.mark.parametrize("mac", ["0" * 32, "x", "%00", callback_mac(SECRET, SegmentKey("s1-1"))])
async def test_forged_mac_is_403_and_changes_nothing(h: Harness, mac: str) -> None:
    status, _ = await post(h, cb_url(h, mac=mac), body())
    assert status == 403
    assert await recorded(h) == [] and h.hints == []


async def test_wrong_secret_mac_is_403(h: Harness) -> None:
    status, answer = await post(h, cb_url(h, mac=callback_mac(b"other", SegmentKey("s1-0"))), body())
    assert (status, answer["error"]) == (403, "forbidden")


async def test_valid_sign_accepted_bad_sign_and_expired_rejected(h: Harness) -> None:
    t = int(NOW) + 600  # Volcengine: expiry = send time + 10 min
    ok = await post(h, cb_url(h), body(sign=sign_for(AUTH_KEY, t), t=t))
    bad = await post(h, cb_url(h), body("end", sign=sign_for("wrong", t), t=t))
    old = int(NOW) - 3600
    expired = await post(h, cb_url(h), body("fail", sign=sign_for(AUTH_KEY, old), t=old))
    assert ok[0] == 200 and ok[1]["result"] == "accepted"
    assert (bad[0], bad[1]["error"]) == (403, "bad_sign")
    assert (expired[0], expired[1]["error"]) == (403, "expired")
    assert len(await recorded(h)) == 1 and len(h.hints) == 1


async def test_sign_inside_byteplus_wrapper_is_checked(h: Harness) -> None:
    t = int(NOW)
    wrapped = {"code": 0, "message": "ok", "data": {**body("stop"), "sign": "f" * 32, "t": t}}
    status, answer = await post(h, cb_url(h), wrapped)
    assert (status, answer["error"]) == (403, "bad_sign")


def unsigned(event: str = "start", **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in body(event, **extra).items() if k not in ("sign", "t")}


@pytest.mark.parametrize(
    "sent",
    [
        unsigned(),  # no sign, no t
        unsigned(sign=""),  # empty sign
        unsigned(sign="", t=0),  # BytePlus's "auth off" marker
        unsigned(sign=sign_for(AUTH_KEY, SIGNED_T)),  # sign without t
        unsigned(t=SIGNED_T),  # t without sign
        {"code": 0, "message": "ok", "data": unsigned()},  # wrapped, unsigned
    ],
    ids=["absent", "empty", "byteplus-off", "no-t", "t-only", "wrapped"],
)
async def test_with_an_auth_key_an_unsigned_body_is_refused(h: Harness, sent: dict[str, Any]) -> None:
    status, answer = await post(h, cb_url(h), sent)
    assert (status, answer["error"]) == (403, "unsigned")
    assert await recorded(h) == [] and h.hints == []


async def test_without_an_auth_key_the_mac_alone_decides(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await put_segment(store, segment("s1", 0, NOW - 100, NOW + 1000, task_id=TASK))
    harness = await start_harness(store)
    try:
        plain = await post(harness, cb_url(harness), unsigned())
        junk_sign = await post(harness, cb_url(harness), unsigned("end", sign="0" * 32, t=1))
        forged = await post(harness, cb_url(harness, mac="0" * 32), unsigned("fail"))
    finally:
        await harness.close()
    assert (plain[0], plain[1]["result"]) == (200, "accepted")
    assert (junk_sign[0], junk_sign[1]["result"]) == (200, "accepted")
    assert (forged[0], forged[1]["error"]) == (403, "forbidden")


# Bodies that once reached a 500 (an exception escaping the parser): each must be a 400 that records nothing.
POISON = {
    "deep": b'{"TaskId": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "deep-objects": b'{"":' * 10_000 + b"1" + b"}" * 10_000,  # under the 64 KiB limit
    "huge-int-time": b'{"TaskId": "t", "Time": 1' + b"0" * 4000 + b"}",
    "huge-float-time": b'{"TaskId": "t", "Time": 1e400}',
    "nan-time": b'{"TaskId": "t", "Time": NaN}',
    "lone-surrogate": b'{"TaskId": "\\udcff"}',
    "surrogate-key": b'{"\\ud800": 1, "TaskId": "t"}',
    "surrogate-nested": b'{"TaskId": "t", "data": {"code": 0, "x": ["ok", "\\udfff"]}}',
}


@pytest.mark.parametrize("raw", list(POISON.values()), ids=list(POISON))
async def test_poison_bodies_are_400_and_change_nothing(h: Harness, raw: bytes) -> None:
    status, answer = await post(h, cb_url(h), raw)
    assert (status, answer["error"]) == (400, "bad_json")
    assert await recorded(h) == [] and h.hints == []
    # The store is still writable for the next, valid callback.
    status, answer = await post(h, cb_url(h), body())
    assert (status, answer["result"]) == (200, "accepted")


async def test_valid_surrogate_pair_and_big_but_sane_numbers_are_accepted(h: Harness) -> None:
    raw = json.dumps(body(Note="\U0001f600 ok", Time=int(NOW) * 1000, Seq=2**63)).encode()  # ensure_ascii: a pair
    assert b"\\ud83d\\ude00" in raw
    status, answer = await post(h, cb_url(h), raw)
    assert (status, answer["result"]) == (200, "accepted")
    assert h.hints[0][2].time == NOW


@pytest.mark.parametrize("raw", [b"not json", b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b""])
async def test_malformed_body_is_400(h: Harness, raw: bytes) -> None:
    status, answer = await post(h, cb_url(h), raw)
    assert (status, answer["error"]) == (400, "bad_json")
    assert await recorded(h) == []


async def test_oversized_body_is_413(h: Harness) -> None:
    big = json.dumps(body(pad="x" * (64 * 1024))).encode()
    status, answer = await post(h, cb_url(h), big)
    assert (status, answer["error"]) == (413, "too_large")
    assert await recorded(h) == []


async def test_oversized_chunked_body_is_413(h: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"pad": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    status, answer = await post(h, cb_url(h), chunks())  # type: ignore[arg-type]
    assert (status, answer["error"]) == (413, "too_large")


async def test_body_just_under_limit_is_accepted(h: Harness) -> None:
    raw = json.dumps(body()).encode()
    raw = raw[:-1] + b', "pad": "' + b"x" * (64 * 1024 - len(raw) - 12) + b'"}'
    assert len(raw) <= 64 * 1024
    status, _ = await post(h, cb_url(h), raw)
    assert status == 200


async def test_unknown_segment_is_200_logged_and_not_hinted(h: Harness) -> None:
    status, answer = await post(h, cb_url(h, key="gone-7"), body())
    assert (status, answer["result"]) == (200, "unknown_segment")
    assert h.hints == []
    unknown = await recorded(h, "callback_unknown")
    assert [e.segment_key for e in unknown] == ["gone-7"]


async def test_unknown_task_is_200_recorded_and_hinted(h: Harness) -> None:
    status, answer = await post(h, cb_url(h), {**body(), "TaskId": "f" * 32})
    assert (status, answer["result"]) == (200, "unknown_task")
    assert len(h.hints) == 1


async def test_callbacks_counted_by_result(h: Harness) -> None:
    await post(h, cb_url(h), body())
    await post(h, cb_url(h), body())
    await post(h, cb_url(h, mac="0" * 32), body())
    await post(h, cb_url(h), b"nope")
    families = {f.name: f for f in text_string_to_metric_families(h.metrics.render().decode())}
    counts = {s.labels["result"]: s.value for s in families["relayd_callbacks"].samples if s.name.endswith("_total")}
    assert counts == {"accepted": 1.0, "duplicate": 1.0, "forbidden": 1.0, "bad_json": 1.0}


async def test_no_bearer_token_needed_for_callbacks(h: Harness) -> None:
    status, _ = await post(h, cb_url(h), body(), headers={"Authorization": "Bearer wrong"})
    assert status == 200


async def test_garbage_never_crashes_the_server(h: Harness) -> None:
    rng = random.Random(7)
    statuses = set()
    for _ in range(60):
        choice = rng.randrange(3)
        if choice == 0:
            raw: bytes = os.urandom(rng.randrange(0, 300))
        elif choice == 1:
            raw = json.dumps({rng.choice(["TaskId", "Status", "Time", "data", "t", "sign"]): rng.random()}).encode()
        else:
            raw = json.dumps({"data": {"TaskStatus": rng.randrange(-5, 9), "Time": "2026-13-45"}, "code": "x"}).encode()
        async with h.session.post(cb_url(h), data=raw) as r:
            statuses.add(r.status)
    assert statuses <= {200, 400, 403}
    async with h.session.get(h.url("/healthz")) as r:
        assert r.status == 200
