"""Fixtures for end-to-end tests: the integration suite's emulator factory, shared, plus the reliability suite's.

* ``emulator``: ``await emulator(**EmulatorConfig overrides)`` (from tests/integration).
* ``log_lines``: the daemon's structlog output captured as JSON lines for this test (invariant 4 reads them).
* :class:`Monitor`: samples the invariants every ``interval`` seconds while a scenario runs, for an in-process
  daemon and emulator; violations accumulate and the test asserts there are none.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import hypothesis
import pytest
from hypothesis import strategies as st

from relayd.daemon import Daemon
from relayd.emulator.server import Emulator
from relayd.logs import configure_logging
from tests.e2e import invariants as inv
from tests.e2e.harness import in_background, record_accepted_callbacks
from tests.integration.conftest import emulator, pg_schema, postgres

__all__ = [
    "Monitor",
    "emulator",
    "examples",
    "log_lines",
    "pg_schema",
    "postgres",
    "record_accepted_callbacks",
    "timing_of",
]

T = TypeVar("T")


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[str]]]:
    """Configure JSON logging into a buffer (info level); the callable returns the lines so far."""
    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    yield lambda: buffer.getvalue().splitlines()


def timing_of(daemon: Daemon, *, slack: float = 5.0) -> inv.Timing:
    s = daemon.settings
    return inv.Timing(
        cap=s.max_task_seconds,
        prepare_ahead=s.prepare_ahead,
        retention=s.retention,
        horizon=int(s.horizon),
        namespace=s.namespace,
        slack=slack,
    )


@dataclass
class Monitor:
    """Checks invariants 1 and 3 on a timer while a scenario runs (2, 4, 5 are checked once at the end)."""

    emu: Emulator
    daemon: Daemon
    timing: inv.Timing
    budget_s: float
    interval: float = 0.5
    clock: Callable[[], float] = time.time
    violations: list[inv.Violation] = field(default_factory=list)
    checks: int = 0
    grace_s: float = 0.0
    """How long a plan violation may last before it counts (see :class:`invariants.Persistent`)."""
    paused: bool = False

    def __post_init__(self) -> None:
        self.watch = inv.FailureWatch(self.budget_s)
        self.persistent = inv.Persistent(self.grace_s)

    def check_once(self) -> list[inv.Violation]:
        now = self.clock()
        tasks = self.emu.tasks()
        records = self.daemon.store.segments()
        found = inv.check_exact_plan(
            tasks,
            self.daemon.engine.schedules.values(),
            now,
            self.timing,
            excused=inv.excused_titles(records),
        )
        found = self.persistent.filter(found, now) + self.watch.check(tasks, records, now)
        self.checks += 1
        return found

    async def _loop(self) -> None:
        while True:
            if not self.paused:
                for violation in self.check_once():
                    if str(violation) not in {str(v) for v in self.violations}:
                        self.violations.append(violation)
            await asyncio.sleep(self.interval)  # a sampling period, not synchronisation

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Monitor]:
        async with in_background(self._loop(), "invariant-monitor"):
            yield self


def examples(strategy: st.SearchStrategy[T], n: int, *, seed: int = 0) -> list[T]:
    """``n`` values drawn by hypothesis (seeded, no example database), to feed a running daemon afterwards."""
    drawn: list[T] = []

    @hypothesis.settings(max_examples=n, database=None, deadline=None, phases=[hypothesis.Phase.generate])
    @hypothesis.seed(seed)
    @hypothesis.given(strategy)
    def collect(value: T) -> None:
        drawn.append(value)

    collect()
    return drawn
