"""Token buckets on a fake clock: spacing, FIFO order, the sliding-window guarantee, classes, and the off switch."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relayd.volc.pacing import ActionClass, Pacer, TokenBucket


class FakeTime:
    """A clock that only moves when a waiter sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


def max_in_window(grants: list[float], span: float = 1.0) -> int:
    """Most grants inside any half-open window (t - span, t], the emulator's sliding window."""
    window: deque[float] = deque()
    best = 0
    for t in sorted(grants):
        window.append(t)
        while window[0] <= t - span:
            window.popleft()
        best = max(best, len(window))
    return best


def test_first_token_is_free_then_spaced_by_interval() -> None:
    clock = FakeTime()
    bucket = TokenBucket(10, margin_s=0.0, clock=clock)
    waits = [bucket.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_idle_time_does_not_accumulate_a_burst() -> None:
    clock = FakeTime()
    bucket = TokenBucket(10, margin_s=0.0, clock=clock)
    bucket.reserve()
    clock.now = 100.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.1)


async def test_concurrent_waiters_are_served_in_call_order() -> None:
    clock = FakeTime()
    bucket = TokenBucket(5, margin_s=0.0, clock=clock, sleep=clock.sleep)
    waited: dict[int, float] = {}

    async def take(i: int) -> None:
        waited[i] = await bucket.acquire()

    await asyncio.gather(*(take(i) for i in range(6)))
    assert [waited[i] for i in range(6)] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert clock.sleeps == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


@given(
    rate=st.sampled_from([1, 3, 10, 15]),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=80),
)
def test_no_sliding_window_ever_exceeds_the_rate(rate: int, gaps: list[float]) -> None:
    clock = FakeTime()
    bucket = TokenBucket(rate, clock=clock)
    grants = []
    for gap in gaps:
        clock.now += gap
        grants.append(clock.now + bucket.reserve())
    assert max_in_window(grants) <= rate


async def test_classes_have_separate_buckets() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=10, list_qps=15, margin_s=0.0, clock=clock, sleep=clock.sleep)
    assert await pacer.acquire(ActionClass.WRITE) == 0.0
    assert await pacer.acquire(ActionClass.LIST) == 0.0
    assert await pacer.acquire(ActionClass.WRITE) == pytest.approx(0.1)
    assert await pacer.acquire(ActionClass.LIST) == pytest.approx(1 / 15)


async def test_disabled_pacer_never_waits() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=1, list_qps=1, enabled=False, clock=clock, sleep=clock.sleep)
    waits = [await pacer.acquire(ActionClass.WRITE) for _ in range(10)]
    assert waits == [0.0] * 10
    assert clock.sleeps == []


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
