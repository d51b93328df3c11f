"""Reading a callback's body: a body that came whole with its headers is taken without a timer; the size limit holds
on every path."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest
from aiohttp import StreamReader
from aiohttp.test_utils import make_mocked_request

from relayd.web import callbacks
from relayd.web.errors import PayloadTooLarge, RequestTimeout


def request(*chunks: bytes, eof: bool = True, content_length: int | None = None) -> object:
    reader = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    headers = {} if content_length is None else {"Content-Length": str(content_length)}
    return make_mocked_request("POST", "/v1/callbacks/k/m", headers=headers, payload=reader)


async def test_a_whole_body_is_read_without_a_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_timer(delay: float) -> None:
        raise AssertionError("a body already received needs no timeout")

    monkeypatch.setattr(callbacks.asyncio, "timeout", no_timer)
    assert await callbacks.read_limited(request(b'{"a":', b" 1}"), 64, 1.0) == b'{"a": 1}'  # type: ignore[arg-type]
    with pytest.raises(PayloadTooLarge):  # no Content-Length (chunked), over the limit, all of it buffered
        await callbacks.read_limited(request(b"x" * 40, b"y" * 40), 64, 1.0)  # type: ignore[arg-type]


async def test_a_body_still_arriving_is_read_under_the_timeout_and_the_limit() -> None:
    partial = request(b'{"a":', eof=False)
    with pytest.raises(RequestTimeout):
        await callbacks.read_limited(partial, 64, 0.05)  # type: ignore[arg-type]
    growing = request(b"x" * 40, eof=False)
    reading = asyncio.ensure_future(callbacks.read_limited(growing, 64, 5.0))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    growing.content.feed_data(b"y" * 40)  # type: ignore[attr-defined]
    with pytest.raises(PayloadTooLarge):
        await reading


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        await callbacks.read_limited(request(b"{}", content_length=1000), 64, 1.0)  # type: ignore[arg-type]
