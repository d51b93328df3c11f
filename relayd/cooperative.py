"""Cooperative scheduling helpers: how CPU-bound work on the event loop leaves room for everything else.

relayd runs its HTTP server, timers and reconciler on one loop, so a long synchronous stretch delays every callback
answer behind it. Two tools, both cheap enough to call per item:

* ``Slicer`` — for one long loop over many items (a listing of 10,000 tasks): ``if slicer.due(): await
  asyncio.sleep(0)`` yields once every ``slice_s`` of wall time.
* ``Breather`` — for back-to-back passes that each yield but together keep the loop busy: pauses every worker
  together when the loop thread was busy for most of the last slice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLICE_S = 0.002


class Slicer:
    """Says when a synchronous stretch has run ``slice_s`` since it last yielded (or started)."""

    def __init__(self, slice_s: float = SLICE_S, clock: Callable[[], float] = time.perf_counter) -> None:
        self._slice_s = slice_s
        self._clock = clock
        self._since: float | None = None
        self.yields = 0

    def due(self) -> bool:
        """True when the caller should yield now; the next call starts a new slice."""
        now = self._clock()
        if self._since is None:
            self._since = now
            return False
        if now - self._since < self._slice_s:
            return False
        self._since = None
        self.yields += 1
        return True


BUSY_SLICE_S = 0.010
BREATHER_S = 0.010
BUSY_FRACTION = 0.7


class Breather:
    """Keeps back-to-back CPU-bound passes to about half of the loop's time.

    Yielding between passes is not enough when every pass is pure CPU (a resync of 10,000 healthy schedules): the
    loop thread then never idles, and everything else on it (the HTTP server, timers, a writer thread if
    ``state_writer = "thread"``, which needs the GIL between SQLite calls) waits behind the passes. So when the
    loop thread was busy for most of the last ``slice_s``, every worker pauses ``pause_s`` together, leaving the
    loop idle for them and for other processes. Passes that wait on I/O (the platform's
    pacing, store commits) leave the loop idle anyway and are never paused.
    """

    def __init__(
        self, slice_s: float = BUSY_SLICE_S, pause_s: float = BREATHER_S, busy_fraction: float = BUSY_FRACTION
    ) -> None:
        self._slice_s = slice_s
        self._pause_s = pause_s
        self._busy_fraction = busy_fraction
        self._since: float | None = None
        self._cpu = 0.0
        self._until = 0.0
        self.pauses = 0

    def pause(self) -> float:
        """Seconds the calling worker should sleep before its next pass (0: only yield)."""
        now = time.monotonic()
        if now < self._until:
            return self._until - now
        if self._since is None:
            self._since, self._cpu = now, time.thread_time()
            return 0.0
        elapsed = now - self._since
        if elapsed < self._slice_s:
            return 0.0
        busy = (time.thread_time() - self._cpu) / elapsed
        self._since = None
        if busy < self._busy_fraction:
            return 0.0
        self.pauses += 1
        self._until = now + self._pause_s
        return self._pause_s
