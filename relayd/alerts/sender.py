"""The alert sender, seen from the event loop: every Apprise send runs in a process of its own.

Why a process: sends used to run on worker threads of the daemon (one per target). No Apprise work ran on the
event loop, yet a target that answered 500 (retried with backoff) or hung made callback latency worse than the same
alerting to a good target only (p99 45-57 ms against 21-29 ms at 1,000 callbacks/s): each send attempt's Python
work (Apprise formatting, requests and urllib3) had to win the GIL from the busy loop, and the loop then waited to
get it back after each of its own I/O calls. The store's writers moved into processes for the same reason
(``relayd/store/batch.py``). Here the loop writes one pickled request to a pipe and reads one reply per attempt.

Shape: one ``SenderProcess`` per ``Delivery`` (so one per daemon), started by the first send — never at import, and
never when no target is configured. ``SenderProcess.sender(target)`` gives the ``Sender`` of one target, a small
proxy that sends through the shared child; the child holds every target's Apprise object and sends each target's
messages from a thread of its own (``sender_child.py``), so a hanging target still holds only its own thread.

* URLs reach the child in a registration frame on its stdin, never on its command line or in its environment.
* Replies are read by a pipe protocol on the loop (no thread, no task per reply). The caller's timeout cancels the
  wait; a late reply to a cancelled request is dropped. Each request carries its deadline, so the child does not
  start a send nobody waits for any more.
* A send waits for a new child to say it is ready (Apprise loaded) before its deadline starts.
* When the child dies (killed, out of memory), every send in flight fails with DeliveryError, the death is logged
  (``alert_sender_process_ended``), and the next send starts a new child after a delay that grows while children
  keep failing to start or dying young (``RESPAWN_BACKOFF``, ``STABLE_S``). The daemon never fails with it.
* ``stop`` closes the child's stdin (it exits at once), waits briefly, then kills it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import structlog

from relayd.alerts import sender_child
from relayd.alerts.grouping import Message
from relayd.alerts.redact import scrub
from relayd.alerts.sender_child import Request
from relayd.alerts.targets import AlertTarget
from relayd.backoff import Backoff
from relayd.store.batch import Frames, frame
from relayd.store.writer_process import spawn

log = structlog.get_logger("relayd.alerts")

RESPAWN_BACKOFF = Backoff(base=0.5, factor=2.0, cap=30.0)
"""Delay before starting a child again after this many children in a row could not start or died young."""
STABLE_S = 60.0
"""A child that lived this long before it died starts the count of deaths in a row again."""
START_TIMEOUT_S = 30.0
"""How long a child may take to load Apprise and say it is ready (half a second on an idle machine)."""
READY = "ready"
STOP_GRACE_S = 2.0
"""How long ``stop`` waits for the child to exit after closing its stdin, before killing it."""


class DeliveryError(Exception):
    """One send failed; the message is redacted."""


def ended(code: int | None) -> str:
    """How a child ended, for messages: ``signal 9`` or ``exit code 1``."""
    if code is None:
        return "unknown status"
    if code < 0:
        return f"signal {-code}"
    return f"exit code {code}"


def respawn_delay(deaths_in_a_row: int, died_at: float, now: float) -> float:
    """Seconds to wait before starting a child at ``now``: none before the first death, then growing."""
    if deaths_in_a_row < 1:
        return 0.0
    return max(0.0, died_at + RESPAWN_BACKOFF.ceiling(deaths_in_a_row) - now)


Pending = dict[int, "asyncio.Future[tuple[bool, str]]"]
"""The requests a child was sent and has not answered: request id -> the future of ``(ok, reason)``."""


@dataclass(eq=False)
class _Child:
    proc: asyncio.subprocess.Process
    replies: _Replies
    pending: Pending
    started_at: float
    watcher: asyncio.Task[None] | None = None


class TargetSender:
    """The ``Sender`` of one target: sends through the shared child (see the module docstring)."""

    def __init__(self, process: SenderProcess, target: AlertTarget) -> None:
        self._process = process
        self.target = target

    async def __call__(self, message: Message) -> None:
        await self._process.send(self.target, message)


class SenderProcess:
    """The alert sender process of one ``Delivery``: started on the first send, replaced when it dies."""

    def __init__(self, *, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout_s = timeout_s
        self._clock = clock
        self._targets: dict[str, str] = {}
        self._child: _Child | None = None
        self._starting: asyncio.Task[_Child] | None = None
        self._ids = itertools.count(1)
        self._deaths_in_a_row = 0
        self._died_at = 0.0
        self._stopping = False
        self.restarts = 0
        """How many times a child that died was replaced (for tests and logs)."""

    @property
    def pid(self) -> int | None:
        return self._child.proc.pid if self._child is not None else None

    def sender(self, target: AlertTarget) -> TargetSender:
        """The sender of ``target`` (a ``SenderFactory``); the running child, if any, learns the target now."""
        if target.ident not in self._targets:
            self._targets[target.ident] = target.url
            if self._child is not None and self._child.proc.stdin is not None:
                self._child.proc.stdin.write(frame(("targets", [self._entry(target.ident)])))
        return TargetSender(self, target)

    async def send(self, target: AlertTarget, message: Message) -> None:
        """One send; DeliveryError (redacted) if the target did not take it or the child died meanwhile."""
        child = await self._running()
        if child.proc.stdin is None or child.proc.stdin.is_closing():
            raise DeliveryError("the alert sender process is closing")
        request_id = next(self._ids)
        reply = asyncio.get_running_loop().create_future()
        child.pending[request_id] = reply
        deadline = self._clock() + self._timeout_s
        request = Request(request_id, target.ident, message.title, message.body, message.tone.value, deadline)
        child.proc.stdin.write(frame(("send", *request)))
        try:
            ok, reason = await reply
        finally:
            child.pending.pop(request_id, None)  # cancelled by the caller's timeout: a late reply is dropped
        if not ok:
            raise DeliveryError(scrub(reason, target.url))

    async def stop(self) -> None:
        """Close the child's stdin (it exits), wait up to ``STOP_GRACE_S``, then kill it; no child is left."""
        self._stopping = True
        starting = self._starting
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        child, self._child = self._child, None
        if child is None:
            return
        if child.proc.stdin is not None:
            with contextlib.suppress(OSError):
                child.proc.stdin.close()
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await child.proc.wait()
        except TimeoutError:
            await _kill(child.proc)
        if child.watcher is not None:
            await child.watcher

    # -- starting ------------------------------------------------------------------------------------------------

    async def _running(self) -> _Child:
        if self._child is not None:
            return self._child
        if self._stopping:
            raise DeliveryError("the alert sender process is closing")
        if self._starting is None:
            self._starting = asyncio.create_task(self._start(), name="alert-sender-start")
            self._starting.add_done_callback(_retrieved)  # every waiter may have timed out: nobody else reads it
        # Shielded: a caller's timeout ends its own wait, not a start the next send will use.
        return await asyncio.shield(self._starting)

    async def _start(self) -> _Child:
        try:
            await asyncio.sleep(respawn_delay(self._deaths_in_a_row, self._died_at, self._clock()))
            try:
                child = await self._spawn()
            except OSError as e:  # no process at all (out of processes or file descriptors)
                self._start_failed(f"{type(e).__name__}: {e.strerror or e}")
            await self._until_ready(child)
        finally:
            self._starting = None
        self._child = child
        child.watcher = asyncio.create_task(self._watch(child), name="alert-sender-watch")
        return child

    async def _until_ready(self, child: _Child) -> None:
        """Wait for the child's "ready" (Apprise loaded), so its start does not count against the first deadline."""
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                first = await child.replies.first
        except TimeoutError:
            first = f"no answer within {START_TIMEOUT_S:g} s"
        except BaseException:  # stopped meanwhile
            await _kill(child.proc)
            raise
        if first == READY:
            return
        await _kill(child.proc)
        self._start_failed(first)

    def _start_failed(self, reason: str) -> NoReturn:
        self._died(lived=0.0)
        delay = RESPAWN_BACKOFF.ceiling(self._deaths_in_a_row)
        log.error("alert_sender_process_start_failed", reason=reason, next_start_after_s=delay)
        raise DeliveryError(f"the alert sender process could not start ({reason}); sending again")

    def _died(self, lived: float) -> None:
        self._deaths_in_a_row = 1 if lived >= STABLE_S else self._deaths_in_a_row + 1
        self._died_at = self._clock()

    async def _spawn(self) -> _Child:
        loop = asyncio.get_running_loop()
        pending: Pending = {}
        replies = _Replies(loop, pending)
        # stdout and stderr to /dev/null: a line a library prints there may quote a URL.
        proc = await spawn(loop, ("-I", sender_child.__file__), replies,
                           stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(frame(("targets", [self._entry(ident) for ident in self._targets])))
        return _Child(proc, replies, pending, started_at=self._clock())

    def _entry(self, ident: str) -> tuple[str, str, float]:
        return (ident, self._targets[ident], self._timeout_s)

    # -- a child's end -------------------------------------------------------------------------------------------

    async def _watch(self, child: _Child) -> None:
        """When the child's reply pipe closes: fail what it held; unless stopping, log it and let a new one start."""
        await child.replies.closed
        code = await child.proc.wait()
        if self._child is child:
            self._child = None
        lost = list(child.pending.values())
        child.pending.clear()
        how = ended(code)
        if self._stopping:
            error = DeliveryError("the alert sender process was stopped")
        else:
            self._died(lived=self._clock() - child.started_at)
            self.restarts += 1
            error = DeliveryError(f"the alert sender process ended ({how}); sending again")
            log.error(
                "alert_sender_process_ended", pid=child.proc.pid, how=how, in_flight=len(lost),
                next_start_after_s=RESPAWN_BACKOFF.ceiling(self._deaths_in_a_row),
            )  # fmt: skip
        for reply in lost:
            if not reply.done():
                reply.set_exception(error)


class _Replies(asyncio.Protocol):
    """The reply pipe: the first frame (``ready`` or ``fatal``) resolves ``first`` with ``READY`` or the reason the
    child could not start; every later reply settles its request's future at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pending: Pending) -> None:
        self._frames = Frames()
        self._pending = pending
        self.first: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        for reply in self._frames.feed(data):
            self._settle(reply)

    def _settle(self, reply: tuple[Any, ...]) -> None:
        if reply[0] in {"ready", "fatal"}:
            if not self.first.done():
                self.first.set_result(READY if reply[0] == "ready" else str(reply[1]))
        else:
            future = self._pending.pop(reply[0], None)
            if future is not None and not future.done():
                future.set_result((bool(reply[1]), str(reply[2])))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.first.done():
            self.first.set_result("it exited at start")
        if not self.closed.done():
            self.closed.set_result(None)


def _retrieved(task: asyncio.Task[_Child]) -> None:
    if not task.cancelled():
        task.exception()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
