"""Benchmark: 10,000 wake-ups due at the same instant all reach the reconcile queue — on time and with the loop late.

Each round builds the daemon's real alarm clock (``relayd.jobs.build_scheduler`` + ``Jobs``), asks for 10,000
wake-ups (one per schedule id) at one instant a little ahead, and counts the distinct schedule ids that reach the
submit callback (in the daemon: ``ReconcileQueue.submit``). Rounds:

1. **on time**: the loop is free at the due instant. Reports how long the burst took, from the due instant to
   the last submit.
2. **late loop**: the loop is blocked (a synchronous sleep) from just before the due instant until ``--block-s``
   after it, as a long CPU-bound pass or a suspended VM would — every job misfires. relayd sets
   ``misfire_grace_time=None``, so all must still fire.
3. **baseline**: the same late loop with APScheduler's own defaults (``misfire_grace_time=1`` s), measured in
   the same run to show what relayd's explicit job settings prevent. Not a pass/fail criterion.

Target: zero missed in rounds 1 and 2. Exit status 1 otherwise.

    .venv/bin/python bench/jobs_burst.py [--count 10000] [--block-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bench.common import verdict
from relayd.ids import ScheduleId
from relayd.jobs import Jobs, build_scheduler

ADD_COST_S = 100e-6
"""About 2.5x the per-job cost of scheduling measured here, to put the due instant after the last job is in."""


@dataclass
class Round:
    name: str
    count: int
    fired: int
    add_s: float
    burst_s: float
    due_in_s: float
    block_s: float

    @property
    def missed(self) -> int:
        return self.count - self.fired


class Counter:
    """The submit callback: distinct ids, the instant of the last one, and an event when all have arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.ids: set[ScheduleId] = set()
        self.last = 0.0
        self.done = asyncio.Event()

    def submit(self, schedule_id: ScheduleId) -> None:
        self.ids.add(schedule_id)
        self.last = time.time()
        if len(self.ids) >= self.expected:
            self.done.set()


def relayd_wakes(scheduler: AsyncIOScheduler, counter: Counter) -> Callable[[ScheduleId, float], None]:
    return Jobs(scheduler, counter.submit).wake


def default_wakes(scheduler: AsyncIOScheduler, counter: Counter) -> Callable[[ScheduleId, float], None]:
    """Wake-ups as a naive integration would add them: APScheduler's defaults, nothing explicit."""

    async def fire(schedule_id: ScheduleId) -> None:
        counter.submit(schedule_id)

    def wake(schedule_id: ScheduleId, at: float) -> None:
        trigger = DateTrigger(run_date=datetime.fromtimestamp(at, UTC), timezone=UTC)
        scheduler.add_job(fire, trigger, args=[schedule_id], id=f"wake:{schedule_id}")

    return wake


async def one_round(name: str, count: int, block_s: float, defaults: bool = False) -> Round:
    scheduler = AsyncIOScheduler(timezone=UTC) if defaults else build_scheduler()
    scheduler.start()
    counter = Counter(count)
    wake = (default_wakes if defaults else relayd_wakes)(scheduler, counter)
    try:
        due = time.time() + 0.5 + count * ADD_COST_S
        started = time.perf_counter()
        for i in range(count):
            wake(ScheduleId(f"s{i}"), due)
        add_s = time.perf_counter() - started
        due_in_s = due - time.time()
        if block_s > 0:
            await asyncio.sleep(max(0.0, due - time.time() - 0.05))
            time.sleep(block_s + 0.05)  # the loop is held past the due instant: every job misfires
        # Wait for all of them, but not forever: missed jobs never arrive.
        try:
            async with asyncio.timeout(max(0.0, due - time.time()) + (2.0 if defaults else 10.0)):
                await counter.done.wait()
        except TimeoutError:
            pass
        return Round(name, count, len(counter.ids), add_s, max(0.0, counter.last - due), due_in_s, block_s)
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # let the scheduler's shutdown callbacks run on this loop


def report(rounds: list[Round], block_s: float) -> None:
    for r in rounds:
        burst = "none arrived"
        if r.fired:
            burst = f"last submit {r.burst_s:.2f} s after the due instant"
            if r.block_s:
                burst += f" ({r.burst_s - r.block_s:.2f} s after the loop was free again)"
        print(
            f"jobs_burst [{r.name}]: {r.fired}/{r.count} fired, {r.missed} missed; scheduling took {r.add_s:.2f} s "
            f"({1e6 * r.add_s / r.count:.0f} us/job, due {r.due_in_s:.2f} s after); {burst}"
        )
    if block_s > 0:
        print(f"  (late rounds: the loop was blocked until {block_s:g} s past the due instant)")


async def run(count: int, block_s: float) -> list[Round]:
    return [
        await one_round("on time", count, 0.0),
        await one_round("late loop", count, block_s),
        await one_round("baseline: APScheduler defaults, late loop", count, block_s, defaults=True),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--block-s", type=float, default=3.0)
    args = parser.parse_args()
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # one "was missed" line per job in the baseline
    rounds = asyncio.run(run(args.count, args.block_s))
    report(rounds, args.block_s)
    on_time, late, _baseline = rounds
    return verdict({"on time: zero missed": on_time.missed == 0, "late loop: zero missed": late.missed == 0})


if __name__ == "__main__":
    sys.exit(main())
