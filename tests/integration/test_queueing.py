"""The reconcile queue: de-duplication, re-running a schedule asked for while it runs, crash isolation, drained(),
bounded concurrency, fairness to the rest of the loop, and a clean stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from relayd.ids import ScheduleId
from relayd.queueing import ReconcileQueue

Handler = Callable[[ScheduleId], Awaitable[None]]


class Recorder:
    """A handler that records calls; individual schedules can be held until released, or made to crash."""

    def __init__(self) -> None:
        self.calls: list[ScheduleId] = []
        self.running: set[ScheduleId] = set()
        self.max_running = 0
        self.gates: dict[ScheduleId, asyncio.Event] = {}
        self.started: dict[ScheduleId, asyncio.Event] = {}
        self.crash: set[ScheduleId] = set()

    def hold(self, schedule_id: ScheduleId) -> asyncio.Event:
        self.started[schedule_id] = asyncio.Event()
        gate = self.gates[schedule_id] = asyncio.Event()
        return gate

    async def __call__(self, schedule_id: ScheduleId) -> None:
        self.calls.append(schedule_id)
        self.running.add(schedule_id)
        self.max_running = max(self.max_running, len(self.running))
        try:
            if schedule_id in self.started:
                self.started[schedule_id].set()
            if schedule_id in self.gates:
                await self.gates.pop(schedule_id).wait()
            await asyncio.sleep(0)
            if schedule_id in self.crash:
                raise RuntimeError("boom")
        finally:
            self.running.discard(schedule_id)


# The breather is judged by how idle the loop stays: other tests running beside it would decide for it.
pytestmark = pytest.mark.serial


async def drained(queue: ReconcileQueue, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        await queue.drained()


S1, S2, S3 = ScheduleId("s1"), ScheduleId("s2"), ScheduleId("s3")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def running(recorder: Recorder) -> AsyncIterator[Callable[..., ReconcileQueue]]:
    """Factory: a queue over ``recorder`` with its workers running; stopped (and awaited) at teardown."""
    started: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def make(workers: int = 8) -> ReconcileQueue:
        queue = ReconcileQueue(recorder, workers=workers)
        stop = asyncio.Event()
        started.append((stop, asyncio.create_task(queue.run(stop), name="test-queue")))
        return queue

    yield make
    for stop, task in started:
        for gate in recorder.gates.values():
            gate.set()
        stop.set()
        async with asyncio.timeout(5):
            await task


async def test_each_submitted_schedule_runs_once(recorder: Recorder, running: Callable[..., ReconcileQueue]) -> None:
    queue = running()
    queue.submit_many([S1, S2, S3])
    await drained(queue)
    assert sorted(recorder.calls) == [S1, S2, S3]
    assert queue.processed == 3


async def test_duplicates_while_queued_collapse(recorder: Recorder, running: Callable[..., ReconcileQueue]) -> None:
    queue = running(workers=1)
    gate = recorder.hold(S1)
    queue.submit(S1)
    await recorder.started[S1].wait()  # the only worker is busy with s1
    for _ in range(5):
        queue.submit(S2)
    assert queue.depth == 2  # s1 running, s2 queued once
    gate.set()
    await drained(queue)
    assert recorder.calls == [S1, S2]


async def test_submitted_while_running_runs_once_more_after(
    recorder: Recorder, running: Callable[..., ReconcileQueue]
) -> None:
    queue = running()
    gate = recorder.hold(S1)
    queue.submit(S1)
    await recorder.started[S1].wait()
    queue.submit(S1)
    queue.submit(S1)  # many asks during one run: one more run
    assert recorder.running == {S1}
    gate.set()
    await drained(queue)
    assert recorder.calls == [S1, S1]
    assert recorder.max_running == 1  # never two passes of one schedule at once


async def test_a_crashing_handler_does_not_stop_the_others(
    recorder: Recorder, running: Callable[..., ReconcileQueue]
) -> None:
    recorder.crash = {S2}
    queue = running(workers=1)
    queue.submit_many([S1, S2, S3])
    await drained(queue)
    assert recorder.calls == [S1, S2, S3]
    assert queue.failures == 1
    queue.submit(S2)  # and the crashed schedule can be asked for again
    await drained(queue)
    assert recorder.calls[-1] == S2
    assert queue.failures == 2


async def test_drained_waits_for_running_work(recorder: Recorder, running: Callable[..., ReconcileQueue]) -> None:
    queue = running()
    await drained(queue)  # idle from the start
    gate = recorder.hold(S1)
    queue.submit(S1)
    waiter = asyncio.create_task(queue.drained())
    await recorder.started[S1].wait()
    await asyncio.sleep(0.05)
    assert not waiter.done()  # queue empty, but s1 still running
    gate.set()
    async with asyncio.timeout(5):
        await waiter
    assert queue.depth == 0


async def test_workers_bound_concurrency(recorder: Recorder, running: Callable[..., ReconcileQueue]) -> None:
    queue = running(workers=3)
    gates = [recorder.hold(ScheduleId(f"s{i}")) for i in range(10)]
    queue.submit_many([ScheduleId(f"s{i}") for i in range(10)])
    await recorder.started[ScheduleId("s2")].wait()
    await asyncio.sleep(0.05)
    assert len(recorder.running) == 3
    for gate in gates:
        gate.set()
    await drained(queue)
    assert recorder.max_running == 3
    assert recorder.calls == [ScheduleId(f"s{i}") for i in range(10)]  # FIFO


async def test_passes_without_io_leave_room_for_the_rest_of_the_loop(running: Callable[..., ReconcileQueue]) -> None:
    """A pass that never suspends must not let the queue hold the loop for the whole backlog."""
    ticks = 0
    done = 0

    async def cpu_only(schedule_id: ScheduleId) -> None:
        nonlocal done
        done += 1

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    queue = ReconcileQueue(cpu_only, workers=2)
    stop = asyncio.Event()
    workers = asyncio.create_task(queue.run(stop))
    other = asyncio.create_task(ticker())
    try:
        queue.submit_many([ScheduleId(f"s{i}") for i in range(2000)])
        await drained(queue)
        assert done == 2000
        assert ticks >= 500  # the other task ran throughout, not only after the backlog
    finally:
        other.cancel()
        stop.set()
        await asyncio.wait([workers, other])


async def test_stop_ends_workers_after_in_flight_passes_and_leaves_no_tasks(recorder: Recorder) -> None:
    queue = ReconcileQueue(recorder, workers=4)
    stop = asyncio.Event()
    task = asyncio.create_task(queue.run(stop))
    gate = recorder.hold(S1)
    queue.submit(S1)
    await recorder.started[S1].wait()
    queue.submit(S2)  # may or may not start before the stop; must not be lost by the queue's bookkeeping
    stop.set()
    await asyncio.sleep(0.05)
    assert not task.done()  # s1 is still in flight: run() waits for it
    gate.set()
    async with asyncio.timeout(5):
        await task
    assert S1 in recorder.calls
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not any(name.startswith("relayd-reconcile-") for name in names)


async def test_stop_with_idle_workers_returns_promptly(recorder: Recorder) -> None:
    queue = ReconcileQueue(recorder, workers=8)
    stop = asyncio.Event()
    task = asyncio.create_task(queue.run(stop))
    await asyncio.sleep(0.01)
    stop.set()
    async with asyncio.timeout(2):
        await task
    assert recorder.calls == []


@pytest.mark.parametrize("breathe", [True, False])
async def test_cpu_bound_passes_pause_to_leave_the_loop_idle(breathe: bool) -> None:
    """Back-to-back passes that only burn CPU pause together now and then (the store's writer thread and the HTTP
    server need the loop thread idle at times); the daemon's first pass opts out to reach READY sooner."""

    async def burn(schedule_id: ScheduleId) -> None:
        end = time.thread_time() + 0.001
        while time.thread_time() < end:
            pass

    queue = ReconcileQueue(burn, workers=2, breathe=breathe)
    stop = asyncio.Event()
    workers = asyncio.create_task(queue.run(stop))
    try:
        started = time.monotonic()
        queue.submit_many([ScheduleId(f"s{i}") for i in range(100)])
        await drained(queue)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        await workers
    assert queue.processed == 100
    if breathe:
        assert queue.pauses >= 3
        assert elapsed >= 0.1 + queue.pauses * 0.005  # ~100 ms of CPU plus the pauses
    else:
        assert queue.pauses == 0


async def test_a_narrow_limit_parks_extra_workers_until_widened(
    recorder: Recorder, running: Callable[..., ReconcileQueue]
) -> None:
    queue = running(workers=4)
    queue.set_limit(1)
    ids = [ScheduleId(f"s{i}") for i in range(4)]
    gates = [recorder.hold(sid) for sid in ids]
    queue.submit_many(ids)
    await recorder.started[ids[0]].wait()
    for _ in range(50):  # give parked workers every chance to start something (they must not)
        await asyncio.sleep(0)
    assert recorder.running == {ids[0]}
    queue.set_limit(4)
    await asyncio.wait_for(recorder.started[ids[3]].wait(), 5)  # widened: the rest start while s0 is held
    assert recorder.running == set(ids)
    for gate in gates:
        gate.set()
    await drained(queue)
    assert recorder.calls == ids
