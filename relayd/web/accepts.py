"""Rate-limited reporting of ``accept()`` failures, which asyncio would otherwise log without bound.

When the process runs out of file descriptors, asyncio's accept loop reports ``socket.accept() out of system
resource`` through the loop's exception handler — once per attempt, up to the listen backlog per loop tick, each
attempt also scheduling another retry — so a slow-loris flood turned into hundreds of megabytes of identical
tracebacks. ``AcceptErrorLog`` takes over the loop's exception handler while the HTTP server runs: those reports
become one ``http_accept_failed`` line per ``interval_s`` with the number suppressed since; every other report
goes to the previous handler unchanged.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("relayd.web.accepts")

ACCEPT_MESSAGE = "socket.accept() out of system resource"
Handler = Any  # asyncio's exception-handler callable: (loop, context) -> object


@dataclass
class RateLimit:
    """At most one event per ``interval_s``: ``allow(now)`` says whether to report, and how many were held back."""

    interval_s: float
    _last: float = float("-inf")
    _held: int = 0

    def allow(self, now: float) -> tuple[bool, int]:
        if now - self._last < self.interval_s:
            self._held += 1
            return False, 0
        held, self._held, self._last = self._held, 0, now
        return True, held


class AcceptErrorLog:
    """Installs itself as the loop's exception handler; ``uninstall`` puts the previous one back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, interval_s: float = 10.0) -> None:
        self._loop = loop
        self._limit = RateLimit(interval_s)
        self._previous: Handler = None

    def install(self) -> None:
        self._previous = self._loop.get_exception_handler()
        self._loop.set_exception_handler(self.handle)

    def uninstall(self) -> None:
        if self._loop.get_exception_handler() == self.handle:
            self._loop.set_exception_handler(self._previous)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_MESSAGE:
            self._pass_on(loop, context)
            return
        report, suppressed = self._limit.allow(loop.time())
        if report:
            error = context.get("exception")
            code = errno.errorcode.get(getattr(error, "errno", 0) or 0, "unknown")
            log.error(
                "http_accept_failed",
                error=code,
                suppressed=suppressed,
                note="out of file descriptors: raise LimitNOFILE or lower http_max_connections",
            )

    def _pass_on(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
