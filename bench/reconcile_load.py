"""Background load for ``bench/callbacks.py``: the real engine reconciling 10,000 schedules, round after round.

Use: ``.venv/bin/python bench/callbacks.py --background bench.reconcile_load:run`` (or ``:run_cold``); ``--schedules
N`` there sizes the fleet (default 10,000).

Both are the ``async def fn(store, stop)`` that ``bench/callbacks.py`` starts on its server's loop for the latency
phase. Each writes 10,000 schedules (the mix of :func:`bench.common.write_schedules`) to a temp directory, loads
them in a worker thread (loading is start-up work, not the reconcile under test), and builds the daemon's real
``Engine`` + ``ReconcileQueue`` (8 workers) + ``Jobs`` over the *same* store the callback endpoint writes its events
to, with the in-memory :class:`relayd.platform.memory.MemoryPlatform`. Then, until ``stop``, round after round: list the
platform and reconcile every schedule through the queue — exactly the daemon's periodic resync. Only its own
schedules are submitted, so the callback bench's own segments are left alone.

* ``run`` (the issue's case, a resync of a running fleet): first *seeds* the state a finished first reconcile
  leaves — the engine's own decisions for every schedule, with each due task put on the fake platform and every
  record written to the store in batches of 1,000, yielding between schedules — then runs the full rounds. Each
  pass plans, decides and finds nothing to do: pure CPU on the loop, 10,000 times per round. The figures line
  shows how long seeding took (it falls inside the latency window) and how many API actions the measured rounds
  performed (0 means the seed was faithful).
* ``run_cold`` (a worst case that cannot happen in production): the first round from an empty store against a
  platform with no rate limit, so every schedule creates its task and saves its planned segments through the
  executor (with their log lines) at full speed while callbacks arrive. In production the platform's 10 writes/s
  spreads this over ~15 minutes.

Prints one line of figures when stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Rig, bench_settings, build_rig, write_schedules
from relayd.cooperative import Breather
from relayd.ids import ScheduleId
from relayd.outcomes import timely_state
from relayd.platform.memory import MemoryPlatform
from relayd.reconcile import ActionKind, create_body
from relayd.schedules.loader import load_dir
from relayd.schedules.model import Schedule
from relayd.store import SegmentRecord, Store

SCHEDULES = int(os.environ.get("RELAYD_BENCH_SCHEDULES", "10000"))
"""How many schedules (``bench/callbacks.py --schedules N`` sets the variable before importing this module)."""
SEED_BATCH = 100


@dataclass
class Figures:
    seed_s: float | None = None
    rounds: int = 0
    passes: int = 0
    first_round_s: float | None = None
    actions: dict[str, int] = dataclasses.field(default_factory=dict)


def _prepare() -> tuple[tempfile.TemporaryDirectory[str], list[Schedule]]:
    workdir = tempfile.TemporaryDirectory(prefix="relayd-load-")  # removed at interpreter exit
    write_schedules(Path(workdir.name) / "schedules", SCHEDULES, time.time())
    schedules = load_dir(Path(workdir.name) / "schedules").schedules()
    gc.freeze()  # as the daemon does once its configuration is loaded
    return workdir, schedules


# Loading 10,000 schedules is start-up work, not the reconcile under test, and it holds the GIL for ~0.7 s
# (a worker thread does not help). bench/callbacks.py imports this module before it starts the latency phase's
# client, so loading here keeps it out of the measured window.
_WORKDIR, _SCHEDULES = _prepare()


def _seeded(rig: Rig, platform: MemoryPlatform, schedule_id: ScheduleId) -> list[SegmentRecord]:
    """The records one schedule's first reconcile would leave, its due tasks put on the platform."""
    now = time.time()
    records = []
    for action in rig.engine.decide_now(schedule_id).actions:
        record, segment = action.record, action.segment
        if action.kind == ActionKind.CREATE and segment is not None:
            body = create_body(segment, now=now, callback_url=None)
            task_id = platform.add(body)
            record = dataclasses.replace(
                record, task_id=task_id, state=timely_state(record, now), body=body, spec_hash=segment.spec_hash
            )
        records.append(record)
    return records


async def _seed(rig: Rig, platform: MemoryPlatform, store: Store, ids: list[ScheduleId]) -> None:
    breather = Breather()  # seeding is CPU-bound too: leave the loop room as the queue's workers do
    batch: list[SegmentRecord] = []
    for schedule_id in ids:
        batch.extend(_seeded(rig, platform, schedule_id))
        if len(batch) >= SEED_BATCH:
            await store.put_many(batch)
            batch = []
        await asyncio.sleep(breather.pause())
    await store.put_many(batch)


async def _round(rig: Rig, ids: list[ScheduleId], stop: asyncio.Event) -> bool:
    """One resync: list, then every schedule through the queue. False if ``stop`` came first."""
    await rig.engine.list_platform()
    rig.queue.submit_many(ids)
    drained = asyncio.ensure_future(rig.queue.drained())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({drained, stopped}, return_when=asyncio.FIRST_COMPLETED)
    drained.cancel()
    stopped.cancel()
    return not stop.is_set()


async def _load(store: Store, stop: asyncio.Event, *, seed: bool) -> Figures:
    figures = Figures()
    platform = MemoryPlatform()
    rig = build_rig(store, platform, bench_settings(Path(_WORKDIR.name)), _SCHEDULES)
    ids = sorted(rig.engine.schedules)
    if seed:
        started = time.perf_counter()
        await _seed(rig, platform, store, ids)
        figures.seed_s = time.perf_counter() - started
        gc.freeze()  # as the daemon does after its first reconcile
    workers = asyncio.create_task(rig.queue.run(stop), name="bench-reconcile-queue")
    started = time.perf_counter()
    try:
        while await _round(rig, ids, stop):
            figures.rounds += 1
            if figures.first_round_s is None:
                figures.first_round_s = time.perf_counter() - started
    finally:
        stop.set()
        await workers
        rig.scheduler.shutdown(wait=False)
    figures.passes = rig.engine.passes
    figures.actions = {k: v for k, v in platform.calls.items() if not k.startswith("list")}
    return figures


def _print(name: str, figures: Figures) -> None:
    seed = f"seeded in {figures.seed_s:.1f} s, " if figures.seed_s is not None else ""
    first = f"{figures.first_round_s:.1f} s" if figures.first_round_s is not None else "not finished"
    print(
        f"reconcile_load[{name}]: {SCHEDULES} schedules, {seed}{figures.rounds} full rounds (first: {first}), "
        f"{figures.passes} passes, API actions during the rounds: {figures.actions or 'none'}"
    )


async def run(store: Store, stop: asyncio.Event) -> None:
    """A resync of 10,000 running schedules, over and over (see the module docstring)."""
    _print("run", await _load(store, stop, seed=True))


async def run_cold(store: Store, stop: asyncio.Event) -> None:
    """The first reconcile of 10,000 schedules against an unthrottled platform, then resyncs."""
    _print("run_cold", await _load(store, stop, seed=False))
