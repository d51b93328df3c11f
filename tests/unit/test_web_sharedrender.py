"""One rendering shared by concurrent readers, encoded slice by slice: ``relayd.web.sharedrender``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.cooperative import Slicer
from relayd.web.sharedrender import SharedRenders, encode_each, json_object_with_list

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(items=st.lists(JSON, max_size=4), rest=st.dictionaries(st.text(max_size=4).filter(lambda k: k != "s"), JSON))
def test_spliced_object_is_the_text_json_dumps_gives(items: list[Any], rest: dict[str, Any]) -> None:
    spliced = json_object_with_list("s", [json.dumps(i).encode() for i in items], rest)
    assert spliced == json.dumps({"s": items, **rest}).encode()


async def test_concurrent_readers_of_one_key_share_one_rendering() -> None:
    renders = SharedRenders()
    release = asyncio.Event()
    calls = 0

    async def render() -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        return b"body"

    readers = [asyncio.create_task(renders.get("k", render)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*readers) == [b"body"] * 10
    assert calls == 1
    assert await renders.get("k", render) == b"body" and calls == 1  # kept under its key
    assert await renders.get("k2", render) == b"body" and calls == 2  # a new key renders again


async def test_a_reader_that_goes_away_does_not_cancel_the_others_rendering() -> None:
    renders = SharedRenders()
    release = asyncio.Event()

    async def render() -> bytes:
        await release.wait()
        return b"body"

    leaving = asyncio.create_task(renders.get("k", render))
    staying = asyncio.create_task(renders.get("k", render))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == b"body"
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failed_rendering_reaches_its_readers_and_is_not_kept() -> None:
    renders = SharedRenders()
    answers = iter([RuntimeError("boom"), b"body"])

    async def render() -> bytes:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(RuntimeError, match="boom"):
        await renders.get("k", render)
    assert await renders.get("k", render) == b"body"


async def test_encoding_gives_the_loop_back_after_each_slice() -> None:
    ticks = iter(range(1000))
    slicer = Slicer(slice_s=2, clock=lambda: float(next(ticks)))  # every third item ends a slice
    ran = 0

    async def other() -> None:
        nonlocal ran
        while True:
            ran += 1
            await asyncio.sleep(0)

    other_task = asyncio.create_task(other())
    await asyncio.sleep(0)
    before = ran
    encoded = await encode_each(range(10), lambda i: {"i": i}, slicer)
    other_task.cancel()
    assert encoded == [json.dumps({"i": i}).encode() for i in range(10)]
    assert slicer.yields == 3 and ran - before >= slicer.yields  # the other task ran at every yield
