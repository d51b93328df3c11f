"""Pacing gates on a fake clock: spacing, urgency order (FIFO among equals), the sliding-window guarantee under late
wake-ups, the ratio to N/QPS, per-action classes, adaptation to throttling, and the off switch."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayd.volc.pacing import DEFAULT_MARGIN_S, RECOVER_AFTER_S, ActionClass, Gate, Pacer


class FakeTime:
    """A clock that moves only when a waiter sleeps (by the sleep, plus ``late`` to play a busy loop)."""

    def __init__(self, late: list[float] | None = None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._late = deque(late or [])

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + (self._late.popleft() if self._late else 0.0)
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


async def releases(gate: Gate, clock: FakeTime, count: int) -> list[float]:
    """Release times of ``count`` callers that all arrive at once."""
    out: list[float] = []

    async def take() -> None:
        await gate.acquire()
        out.append(clock.now)

    await asyncio.gather(*(take() for _ in range(count)))
    return out


def one_per_second() -> tuple[FakeTime, list[str], Callable[[str, float], Awaitable[None]]]:
    """A 1/s gate on a fake clock, and a caller that acquires it with a priority and notes its name when released."""
    clock = FakeTime()
    gate = Gate(1, margin_s=0.0, clock=clock, sleep=clock.sleep)
    order: list[str] = []

    async def take(name: str, priority: float) -> None:
        await gate.acquire(priority)
        order.append(name)

    return clock, order, take


async def test_first_release_is_free_then_spaced_by_interval() -> None:
    clock = FakeTime()
    gate = Gate(10, margin_s=0.0, clock=clock, sleep=clock.sleep)
    times = await releases(gate, clock, 4)
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3])


async def test_idle_time_does_not_accumulate_a_burst() -> None:
    clock = FakeTime()
    gate = Gate(10, margin_s=0.0, clock=clock, sleep=clock.sleep)
    await gate.acquire()
    clock.now = 100.0
    assert await gate.acquire() == 0.0
    assert await gate.acquire() == pytest.approx(0.1)


async def test_concurrent_waiters_are_served_in_call_order() -> None:
    clock = FakeTime()
    gate = Gate(5, margin_s=0.0, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def take(i: int) -> None:
        await gate.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(6)))
    assert order == list(range(6))


async def test_the_most_urgent_waiter_takes_each_slot_fifo_among_equals() -> None:
    clock, order, take = one_per_second()

    # The first caller finds the gate free; the rest queue during its slot, in this call order.
    callers = [("first", 500.0), ("late-a", 300.0), ("soon", 100.0), ("late-b", 300.0), ("sooner", 50.0)]
    await asyncio.gather(*(take(name, priority) for name, priority in callers))
    assert order == ["first", "sooner", "soon", "late-a", "late-b"]
    assert clock.sleeps == [1.0] * 4  # still one slot a second


async def test_an_urgent_caller_arriving_during_the_wait_takes_the_next_slot() -> None:
    clock, order, take = one_per_second()

    await take("first", 0.0)
    late = [asyncio.create_task(take(f"late-{i}", 1000.0 + i)) for i in range(2)]
    await asyncio.sleep(0)  # the late ones are queued, and one of them keeps time for the next slot
    assert clock.sleeps == [1.0]
    await take("urgent", 10.0)
    await asyncio.gather(*late)
    assert order == ["first", "urgent", "late-0", "late-1"]
    assert clock.sleeps == [1.0, 1.0, 1.0]  # three slots, one interval apart: the keeper lost nothing


async def test_a_cancelled_waiter_gives_its_turn_to_the_next_in_urgency_order() -> None:
    clock, order, take = one_per_second()

    await take("first", 0.0)
    keeper = asyncio.create_task(take("keeper", 5.0))  # arrives first: keeps time for the next slot
    others = [asyncio.create_task(take(name, p)) for name, p in (("b", 7.0), ("a", 6.0))]
    await asyncio.sleep(0)
    keeper.cancel()
    await asyncio.gather(*others)
    assert keeper.cancelled() and order == ["first", "a", "b"]
    assert clock.now == pytest.approx(2.0)  # no slot lost to the cancelled keeper


async def test_a_create_for_a_sooner_start_passes_both_gates_first() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=10, list_qps=15, create_update_qps=1, margin_s=0.0, clock=clock, sleep=clock.sleep)
    order: list[float] = []

    async def create(start: float) -> None:
        await pacer.acquire(ActionClass.CREATE, start)
        order.append(start)

    await asyncio.gather(*(create(start) for start in (900.0, 700.0, 100.0, 800.0, 300.0)))
    assert order == [900.0, 100.0, 300.0, 700.0, 800.0]


@pytest.mark.parametrize("qps", [1, 10])
async def test_n_releases_take_at_most_1_02_times_n_over_qps(qps: int) -> None:
    clock = FakeTime()
    gate = Gate(qps, clock=clock, sleep=clock.sleep)
    count = 20 * qps
    times = await releases(gate, clock, count)
    # One more interval for the last request's own answer: the bench measures first call to last answer.
    assert times[-1] + 1 / qps <= 1.02 * count / qps
    assert times[-1] + 1 / qps >= count / qps  # not faster than the limit either


@settings(deadline=None, max_examples=60)
@given(
    qps=st.sampled_from([1, 3, 10, 15]),
    late=st.lists(st.floats(min_value=0, max_value=0.3), min_size=1, max_size=60),
)
def test_no_sliding_window_exceeds_the_rate_however_late_waiters_wake(qps: int, late: list[float]) -> None:
    clock = FakeTime(late)
    gate = Gate(qps, clock=clock, sleep=clock.sleep)
    times = asyncio.run(releases(gate, clock, len(late) + qps))
    assert max_in_window(times, 1.0 + DEFAULT_MARGIN_S / 2) <= qps


async def test_late_wakeups_do_not_push_every_later_slot_back() -> None:
    clock = FakeTime(late=[0.004] * 400)  # every wake-up 4 ms late: a busy loop
    gate = Gate(10, clock=clock, sleep=clock.sleep)
    times = await releases(gate, clock, 200)
    # Spacing each release from the previous (late) one would add 200 x 4 ms = 0.8 s (1.04 x N/QPS).
    assert times[-1] + 0.1 <= 1.02 * 20


async def test_throttling_halves_the_rate_once_per_period_then_recovers_by_doubling() -> None:
    clock = FakeTime()
    gate = Gate(10, clock=clock, sleep=clock.sleep)
    for _ in range(15):  # one burst of throttled answers: one cut
        gate.throttled()
        clock.now += 0.1
    assert gate.rate == pytest.approx(5)
    clock.now += RECOVER_AFTER_S
    gate.throttled()  # still throttled a period later: cut again
    assert gate.rate == pytest.approx(2.5)
    rates = []
    for _ in range(4):
        clock.now += RECOVER_AFTER_S
        gate.succeeded()
        rates.append(gate.rate)
    assert rates == pytest.approx([5, 10, 10, 10])  # doubling, never above the configured rate


async def test_success_before_recover_after_keeps_the_reduced_rate() -> None:
    clock = FakeTime()
    gate = Gate(1, clock=clock, sleep=clock.sleep)
    gate.throttled()
    clock.now += RECOVER_AFTER_S / 2
    gate.succeeded()
    assert gate.rate == pytest.approx(0.5)


async def test_a_reduced_gate_spaces_releases_at_the_new_rate() -> None:
    clock = FakeTime()
    gate = Gate(10, margin_s=0.0, clock=clock, sleep=clock.sleep)
    await gate.acquire()
    gate.throttled()
    times = await releases(gate, clock, 3)
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([0.2, 0.2])


async def test_the_rate_never_falls_below_a_sixteenth() -> None:
    clock = FakeTime()
    gate = Gate(8, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        clock.now += 100
        gate.throttled()
    assert gate.rate == pytest.approx(0.5)


async def test_create_and_update_pass_their_own_gate_and_the_write_gate() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=10, list_qps=15, create_update_qps=1, margin_s=0.0, clock=clock, sleep=clock.sleep)
    assert await pacer.acquire(ActionClass.CREATE) == 0.0
    assert await pacer.acquire(ActionClass.UPDATE) == pytest.approx(0.1)  # its own gate is free; the write one not
    assert await pacer.acquire(ActionClass.WRITE) == pytest.approx(0.1)  # Create and Update took write slots
    assert await pacer.acquire(ActionClass.CREATE) == pytest.approx(0.8)  # 1 s after the first Create
    assert await pacer.acquire(ActionClass.LIST) == 0.0


async def test_a_create_held_at_the_write_gate_counts_at_its_send_for_the_next_create() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=10, list_qps=15, create_update_qps=1, margin_s=0.0, clock=clock, sleep=clock.sleep)
    await pacer.acquire(ActionClass.WRITE)  # the write gate is busy for 0.1 s
    assert await pacer.acquire(ActionClass.CREATE) == pytest.approx(0.1)  # sent at 0.1, not at its create grant (0)
    assert await pacer.acquire(ActionClass.CREATE) == pytest.approx(1.0)  # so the next one goes at 1.1, not 1.0


async def test_a_throttled_create_slows_create_and_write_but_not_list() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=10, list_qps=15, create_update_qps=1, clock=clock, sleep=clock.sleep)
    pacer.throttled(ActionClass.CREATE)
    assert pacer.gate(ActionClass.CREATE).rate == pytest.approx(0.5)
    assert pacer.gate(ActionClass.WRITE).rate == pytest.approx(5)
    assert pacer.gate(ActionClass.UPDATE).rate == pytest.approx(1)
    assert pacer.gate(ActionClass.LIST).rate == pytest.approx(15)


async def test_without_create_update_qps_create_runs_at_the_write_rate() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=10, list_qps=15, clock=clock, sleep=clock.sleep)
    assert pacer.gate(ActionClass.CREATE).rate == pacer.gate(ActionClass.WRITE).rate == 10


async def test_disabled_pacer_never_waits() -> None:
    clock = FakeTime()
    pacer = Pacer(write_qps=1, list_qps=1, enabled=False, clock=clock, sleep=clock.sleep)
    waits = [await pacer.acquire(ActionClass.WRITE) for _ in range(10)]
    assert waits == [0.0] * 10
    assert clock.sleeps == []


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        Gate(0)
