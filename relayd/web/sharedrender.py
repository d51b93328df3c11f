"""Expensive read answers built once for every reader that asks at the same time, and without holding the loop.

Ten open consoles re-read the timeline on the same "changed" tick, and a full timeline of 1,000 schedules is about
3 MB of JSON that takes ~100 ms of CPU to shape and encode. Built once per reader and in one stretch, that is a
second of loop time in which no callback is answered. So:

* :class:`SharedRenders` keeps the last answer under its key and lets concurrent readers of the same key await one
  rendering in flight (a reader that disconnects does not cancel it for the others);
* :func:`encode_each` encodes a long list item by item, yielding to the loop every :data:`~relayd.cooperative.SLICE_S`
  of wall time, so a rendering is spread over many short slices between which callbacks are answered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Hashable, Iterable
from functools import partial
from typing import Any, TypeVar

from relayd.cooperative import Slicer

T = TypeVar("T")


class SharedRenders:
    """The last rendering under its key, and renderings in flight shared by every reader of their key."""

    def __init__(self) -> None:
        self._last: tuple[Hashable, bytes] | None = None
        self._pending: dict[Hashable, asyncio.Future[bytes]] = {}

    async def get(self, key: Hashable, render: Callable[[], Awaitable[bytes]]) -> bytes:
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(render())
            self._pending[key] = pending
            pending.add_done_callback(partial(self._settled, key))
        return await asyncio.shield(pending)

    def _settled(self, key: Hashable, done: asyncio.Future[bytes]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled() and done.exception() is None:  # exception() also marks a failure as retrieved
            self._last = (key, done.result())


async def encode_each(values: Iterable[T], shape: Callable[[T], Any], slicer: Slicer | None = None) -> list[bytes]:
    """Each value shaped and JSON-encoded, yielding to the loop whenever a slice of CPU has been spent."""
    slicer = slicer or Slicer()
    out = []
    for value in values:
        out.append(json.dumps(shape(value)).encode())
        if slicer.due():
            await asyncio.sleep(0)
    return out


def json_object_with_list(name: str, items: list[bytes], rest: dict[str, Any]) -> bytes:
    """``{name: [items…], **rest}`` as JSON, from items already encoded (the same text ``json.dumps`` would give)."""
    head = json.dumps({name: []}).encode()[:-2]  # b'{"name": ['
    tail = json.dumps(rest).encode()
    joined = b", ".join(items)
    return head + joined + (b"], " + tail[1:] if rest else b"]}")
