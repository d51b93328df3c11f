"""The client's calls over real sockets against a canned-envelope aiohttp server on 127.0.0.1.

Covers what a faithful emulator cannot be bent into easily: the exact bytes and headers on the wire, error
envelopes of every shape, malformed answers, hanging requests, refused connections, the retry loop and its
bounds, the observer, and that secrets never show in logs, reprs or errors.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
import structlog
from aiohttp import web

from relayd.backoff import Backoff
from relayd.ids import TaskId
from relayd.volc import signer
from relayd.volc.client import LiveClient
from relayd.volc.errors import ApiError, DeadlineExceeded, TransportError, ValidationError
from relayd.volc.models import CreateTaskRequest, ListTasksQuery

SECRET = "s3cr3t-SK-do-not-log"
TOKEN = "sts-token-do-not-log"
CREDS = signer.Credentials("AKLTunit", SECRET, session_token=TOKEN)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    raw: bytes | None = None
    hang: bool = False

    def payload(self, action: str) -> bytes:
        if self.raw is not None:
            return self.raw
        doc: dict[str, Any] = {"ResponseMetadata": {"RequestId": "RID-" + action, "Action": action}}
        if isinstance(self.body, dict) and "Code" in self.body:
            doc["ResponseMetadata"]["Error"] = self.body
        elif self.body is not None:
            doc["Result"] = self.body
        return json.dumps(doc).encode()


def error(code: str, status: int, code_n: int | None = None) -> Reply:
    body: dict[str, Any] = {"Code": code, "Message": f"{code} happened"}
    if code_n:
        body["CodeN"] = code_n
    return Reply(status, body)


@dataclass
class Seen:
    method: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Canned:
    url: str = ""
    replies: deque[Reply] = field(default_factory=deque)
    default: Reply = field(default_factory=Reply)
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        query = parse_qsl(request.query_string, keep_blank_values=True)
        self.seen.append(Seen(request.method, query, dict(request.headers), body))
        reply = self.replies.popleft() if self.replies else self.default
        if reply.hang:
            await self.release.wait()
        return web.Response(status=reply.status, body=reply.payload(request.query.get("Action", "")))


@pytest.fixture
async def canned() -> AsyncIterator[Canned]:
    server = Canned()
    app = web.Application()
    app.router.add_route("*", "/", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    yield server
    server.release.set()
    await runner.cleanup()


@dataclass
class Recorder:
    calls: list[tuple[str, str, int]] = field(default_factory=list)

    def on_call(self, action: str, outcome: str, seconds: float, attempt: int) -> None:
        assert seconds >= 0
        self.calls.append((action, outcome, attempt))


class Ticking:
    """A wall clock that moves one second per read: every signature gets its own X-Date."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


def make_client(url: str, **overrides: Any) -> LiveClient:
    options: dict[str, Any] = {
        "pacing": False,
        "backoff": Backoff(base=0.001, factor=2, cap=0.005),
        "timeout_s": 2,
        "max_attempts": 4,
        "deadline_s": 10,
        **overrides,
    }
    return LiveClient(url, CREDS, **options)


def live_task(**extra: Any) -> CreateTaskRequest:
    now = int(datetime.now(UTC).timestamp())
    fields = {"start_time": now, "end_time": now + 3600, "src_addr": "rtmp://src.example.com/live/a"}
    return CreateTaskRequest(**(fields | {"dst_addr": "rtmp://dst.example.com/live/b"} | extra))


def verify_signature(seen: Seen) -> str:
    """Recompute the signature the way the platform does, from the request's own SignedHeaders."""
    auth = signer.parse_authorization(seen.headers["Authorization"])
    lower = {k.lower(): v for k, v in seen.headers.items()}
    signed = {name: lower[name] for name in auth.signed_headers}
    expected, _ = signer.signature_for(
        method=seen.method,
        path="/",
        query=seen.query,
        signed=signed,
        body_sha256=signer.sha256_hex(seen.body),
        x_date=seen.headers["X-Date"],
        secret_key=SECRET,
        region="cn-north-1",
        service="live",
    )
    assert auth.signature == expected
    return ";".join(auth.signed_headers)


# --- the wire ------------------------------------------------------------------------------------------------


async def test_post_sends_exactly_the_signed_json(canned: Canned) -> None:
    canned.default = Reply(body={"TaskId": "abc123"})
    async with make_client(canned.url) as client:
        task_id = await client.create_task(live_task(title="任务A1", callback_url="http://cb.example.com/x"))
    assert task_id == "abc123"
    [seen] = canned.seen
    assert seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Host"] == canned.url.removeprefix("http://")
    assert seen.headers["X-Content-Sha256"] == signer.sha256_hex(seen.body)
    assert seen.headers["X-Security-Token"] == TOKEN
    assert verify_signature(seen) == "content-type;host;x-content-sha256;x-date;x-security-token"
    body = json.loads(seen.body)
    assert body["Title"] == "任务A1" and body["CallbackURL"] == "http://cb.example.com/x" and body["Type"] == 0
    assert "GroupName" not in body  # None fields are left out
    assert dict(seen.query)["Action"] == "CreatePullToPushTask" and dict(seen.query)["Version"] == "2023-01-01"


async def test_get_list_sends_query_and_no_body(canned: Canned) -> None:
    canned.default = Reply(body={"List": [], "Pagination": {"PageCur": 2, "PageSize": 20, "PageTotal": 2}})
    async with make_client(canned.url) as client:
        page = await client.list_tasks(ListTasksQuery(page=2, size=20, title="doc 任务", group_name="default"))
    assert page.pagination.page_cur == 2 and page.items == []
    [seen] = canned.seen
    assert seen.method == "GET" and seen.body == b""
    assert "Content-Type" not in seen.headers
    assert dict(seen.query) == {
        "Action": "ListPullToPushTask",
        "Version": "2023-01-01",
        "Page": "2",
        "Size": "20",
        "Title": "doc 任务",
        "GroupName": "default",
    }
    assert verify_signature(seen) == "host;x-content-sha256;x-date;x-security-token"


async def test_raw_call_passes_any_action_through(canned: Canned) -> None:
    canned.default = Reply(body={"Anything": [1, 2]})
    async with make_client(canned.url) as client:
        result = await client.call("DescribeSomething", body={"A": True}, query={"Flag": True, "Ids": ["x", "y"]})
    assert result == {"Anything": [1, 2]}
    query = dict(canned.seen[0].query)
    assert (query["Flag"], query["Ids"]) == ("True", "x,y")
    assert json.loads(canned.seen[0].body) == {"A": True}


# --- validation ------------------------------------------------------------------------------------------------


async def test_rule_violations_are_raised_before_sending(canned: Canned) -> None:
    async with make_client(canned.url) as client:
        with pytest.raises(ValidationError) as caught:
            await client.create_task(live_task(title="bad title!", end_time=1, dst_addr=None))
    fields = {p.field for p in caught.value.problems}
    assert {"Title", "EndTime", "DstAddr"} <= fields
    assert "Title:" in str(caught.value)
    assert canned.seen == []


async def test_raw_calls_are_validated_by_action(canned: Canned) -> None:
    async with make_client(canned.url) as client:
        with pytest.raises(ValidationError) as caught:
            await client.call("StopPullToPushTask", body={"GroupName": "default"})
    assert [p.field for p in caught.value.problems] == ["TaskId"]
    assert canned.seen == []


# --- errors and retries ----------------------------------------------------------------------------------------


async def test_retryable_errors_are_retried_and_resigned(canned: Canned) -> None:
    canned.replies.extend(
        [error("FlowLimitExceeded", 429, 100018), error("InternalError", 500), error("CommonErr", 200)]
    )
    canned.default = Reply(body=None)
    recorder = Recorder()
    async with make_client(canned.url, observer=recorder, now=Ticking()) as client:
        await client.stop_task(TaskId("t1"), "default")
    assert len(canned.seen) == 4
    assert len({s.headers["X-Date"] for s in canned.seen}) == 4
    for seen in canned.seen:
        verify_signature(seen)
    assert recorder.calls == [
        ("StopPullToPushTask", "FlowLimitExceeded", 1),
        ("StopPullToPushTask", "InternalError", 2),
        ("StopPullToPushTask", "CommonErr", 3),
        ("StopPullToPushTask", "ok", 4),
    ]


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (error("InvalidParam", 400), "InvalidParam"),
        (error("SignatureDoesNotMatch", 401, 100010), "SignatureDoesNotMatch"),
        (error("AccessDenied", 403, 100013), "AccessDenied"),
        (error("ResourceNotFound", 404), "ResourceNotFound"),
        (error("InvalidParam.BindError", 200), "InvalidParam.BindError"),
    ],
)
async def test_terminal_errors_are_raised_at_once(canned: Canned, reply: Reply, code: str) -> None:
    canned.default = reply
    async with make_client(canned.url) as client:
        with pytest.raises(ApiError) as caught:
            await client.delete_task(TaskId("t1"))
    assert caught.value.code == code
    assert caught.value.request_id == "RID-DeletePullToPushTask"
    assert len(canned.seen) == 1


async def test_attempts_are_bounded_and_the_last_error_is_raised(canned: Canned) -> None:
    canned.default = error("ServiceUnavailableTemp", 503, 100019)
    async with make_client(canned.url, max_attempts=3) as client:
        with pytest.raises(ApiError) as caught:
            await client.relaunch_task(TaskId("t1"))
    assert caught.value.code == "ServiceUnavailableTemp" and caught.value.http_status == 503
    assert len(canned.seen) == 3


async def test_deadline_stops_retrying(canned: Canned) -> None:
    canned.default = error("InternalError", 500, 100014)
    slow = Backoff(base=5, factor=2, cap=5)
    async with make_client(canned.url, backoff=slow, deadline_s=1, rand=lambda: 0.9) as client:
        with pytest.raises(DeadlineExceeded) as caught:
            await client.continue_task(TaskId("t1"))
    assert isinstance(caught.value.last_error, ApiError) and caught.value.last_error.code == "InternalError"
    assert len(canned.seen) == 1


async def test_malformed_5xx_is_retried_then_succeeds(canned: Canned) -> None:
    canned.replies.append(Reply(502, raw=b"<html>Bad Gateway</html>"))
    canned.default = Reply(body={"List": [{"TaskId": "a", "Status": "未开始"}], "Pagination": {"PageTotal": 1}})
    async with make_client(canned.url) as client:
        items = [item async for item in client.iter_tasks()]
    assert [i.task_id for i in items] == ["a"]
    assert len(canned.seen) == 2


async def test_malformed_result_is_an_api_error(canned: Canned) -> None:
    canned.default = Reply(body={"NotTaskId": 1})
    async with make_client(canned.url) as client:
        with pytest.raises(ApiError) as caught:
            await client.create_task(live_task())
    assert caught.value.code == "MalformedResponse" and "TaskId" in caught.value.message


async def test_a_hanging_request_times_out_per_attempt(canned: Canned) -> None:
    canned.default = Reply(hang=True)
    async with make_client(canned.url, timeout_s=0.2, max_attempts=2) as client:
        with pytest.raises(TransportError) as caught:
            await client.call("ListPullToPushTaskV2", body={})
    assert caught.value.kind == "Timeout" and isinstance(caught.value.__cause__, TimeoutError)
    assert len(canned.seen) == 2


async def test_create_is_not_retried_when_it_may_have_reached_the_platform(canned: Canned) -> None:
    canned.default = error("InternalError", 500)
    async with make_client(canned.url) as client:
        with pytest.raises(ApiError):
            await client.create_task(live_task())
    assert len(canned.seen) == 1


async def test_create_is_retried_when_throttled(canned: Canned) -> None:
    canned.replies.append(error("FlowLimitExceeded", 429, 100018))
    canned.default = Reply(body={"TaskId": "t9"})
    async with make_client(canned.url) as client:
        assert await client.create_task(live_task()) == "t9"
    assert len(canned.seen) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_refused_connection_is_a_retried_transport_error() -> None:
    recorder = Recorder()
    async with make_client(f"http://127.0.0.1:{free_port()}", max_attempts=3, observer=recorder) as client:
        with pytest.raises(TransportError) as caught:
            await client.list_tasks(ListTasksQuery())
    assert caught.value.kind == "ConnectError" and caught.value.retryable
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    assert [c[1:] for c in recorder.calls] == [("ConnectError", 1), ("ConnectError", 2), ("ConnectError", 3)]


# --- secrets and lifecycle ---------------------------------------------------------------------------------------


async def test_secrets_never_appear_in_logs_reprs_or_errors(canned: Canned) -> None:
    canned.replies.extend([error("InternalError", 500), error("InternalError", 500)])
    canned.default = error("SignatureDoesNotMatch", 401, 100010)
    with structlog.testing.capture_logs() as logs:
        async with make_client(canned.url) as client:
            with pytest.raises(ApiError) as caught:
                await client.stop_task(TaskId("t1"))
            text = repr(client) + repr(CREDS) + str(caught.value) + repr(caught.value) + repr(logs)
    assert [entry["event"] for entry in logs] == ["api_retry", "api_retry", "api_failed"]
    assert logs[0]["request_id"] == "RID-StopPullToPushTask" and logs[0]["attempt"] == 1
    assert SECRET not in text and TOKEN not in text
    assert "AKLTunit" in repr(client)


async def test_a_passed_session_is_left_open(canned: Canned) -> None:
    async with aiohttp.ClientSession() as session:
        client = LiveClient(canned.url, CREDS, session=session, pacing=False)
        await client.delete_group("g1")
        await client.close()
        assert not session.closed
        await client.delete_group("g2")
    assert [json.loads(s.body)["Name"] for s in canned.seen] == ["g1", "g2"]
