"""The alert sender process: every target's Apprise object, each target's sends on a thread of its own.

Why a process (see ``sender.py`` for the daemon's side): a send's Python work — Apprise formatting the message,
requests and urllib3 building and reading the HTTP exchange — ran on threads of the daemon, and each of those
threads had to win the GIL from the busy event loop, which then waited to get it back after each of its own I/O
calls. A target that answers 500 (retried) or hangs made callback latency worse though no send ran on the loop.
This process has its own interpreter and GIL: the daemon only pickles a request and reads a reply.

Inside, the isolation between targets is what it was in the daemon: each target has one worker thread, so a
hanging target holds only its own thread, and the plugin's connect and read timeouts are lowered to the send
timeout, so that thread is free again soon after the daemon stopped waiting for it.

This file runs as a script (``python -I sender_child.py <reply fd>``) and imports Apprise and the store's framing
(``batch.py``, loaded by path) only, never relayd. Frames (a 4-byte length, then a pickle; see ``batch.py``):

* daemon -> child, on stdin: ``("targets", [(ident, url, timeout_s), ...])`` registers targets (the URLs never on
  the command line or in the environment, where ``ps`` and ``/proc`` would show their tokens); ``("send",
  request_id, ident, title, body, notify_type, deadline)`` sends one message; ``deadline`` is a ``time.monotonic()``
  instant (one clock for every process of the machine) after which the daemon no longer waits, so a send still
  queued behind a hung one is not made late.
* child -> daemon, on the reply fd: ``("ready",)`` once Apprise is loaded, or ``("fatal", reason)`` and exit; then
  ``(request_id, ok, reason)`` per send, in any order. A reason quotes at most Apprise's last warning about the
  send; the daemon scrubs the URL's secrets from it before it is logged.

Apprise's own log lines stay in this process: they feed the reasons and are never written anywhere (stderr is
``/dev/null``: a line may quote a URL). The process exits when its stdin closes (the daemon stopped or died),
without waiting for a hung send; it ignores SIGINT and SIGTERM, which are meant for the daemon.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING or __package__:
    from relayd.store import batch
else:  # run as the sender process's script: load the stdlib-only framing by path, without relayd
    _spec = importlib.util.spec_from_file_location("batch", os.path.join(os.path.dirname(__file__), "..", "store",
                                                                         "batch.py"))  # fmt: skip
    assert _spec is not None and _spec.loader is not None
    batch = sys.modules["batch"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(batch)

if TYPE_CHECKING:
    import apprise

REASON_MAX = 300
"""Characters of an Apprise warning quoted in a reason."""
NOT_ACCEPTED = "the target did not accept the message"
UNUSABLE = "Apprise cannot use this URL (unknown scheme or bad form)"


def expired(deadline: float, now: float) -> bool:
    """True when the daemon stopped waiting for a send before it could start: it is not sent."""
    return now >= deadline


class Request(NamedTuple):
    """One send, as it crosses the pipe (a plain tuple after ``"send"``: the child cannot unpickle relayd types)."""

    request_id: int
    ident: str
    title: str
    body: str
    notify_type: str
    deadline: float
    """A ``time.monotonic()`` instant: the daemon no longer waits after it."""


class _Capture(logging.Handler):
    """Apprise's warnings, kept per sending thread, for the reason of a failed send."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines: list[str] | None = getattr(self.local, "lines", None)
        if lines is not None:
            lines.append(record.getMessage())


class _Replies:
    """The reply pipe, shared by every sending thread: one whole frame at a time."""

    def __init__(self, fd: int) -> None:
        self._pipe = open(fd, "wb")  # noqa: SIM115 - open for the life of the process
        self._lock = threading.Lock()

    def send(self, reply: tuple[Any, ...]) -> None:
        with self._lock:
            try:
                self._pipe.write(batch.frame(reply))
                self._pipe.flush()
            except BrokenPipeError:  # the daemon is gone: stdin's EOF ends this process
                pass


@dataclass(eq=False)
class _Target:
    notifier: apprise.Apprise | None
    """None when Apprise cannot use the URL: every send fails saying so."""
    worker: ThreadPoolExecutor


class Sender:
    """The child's state: the targets, their threads, and the capture of Apprise's warnings."""

    def __init__(self, replies: _Replies, capture: _Capture) -> None:
        self._replies = replies
        self._capture = capture
        self._targets: dict[str, _Target] = {}

    def add(self, entries: Sequence[tuple[str, str, float]]) -> None:
        for ident, url, timeout_s in entries:
            if ident not in self._targets:
                worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"relayd-alert-{ident[:6]}")
                self._targets[ident] = _Target(_notifier(url, timeout_s), worker)

    def send(self, request: Request) -> None:
        target = self._targets.get(request.ident)
        if target is None:
            self._replies.send((request.request_id, False, "the alert sender process does not know this target"))
            return
        target.worker.submit(self._run, request, target)

    def _run(self, request: Request, target: _Target) -> None:
        if expired(request.deadline, time.monotonic()):
            reason = "not sent: the send timed out while queued behind another"
            self._replies.send((request.request_id, False, reason))
            return
        ok, reason = self._notify(request, target)
        self._replies.send((request.request_id, ok, reason))

    def _notify(self, request: Request, target: _Target) -> tuple[bool, str]:
        import apprise  # noqa: PLC0415 - loaded by main before any target

        if target.notifier is None:
            return False, UNUSABLE
        lines: list[str] = []
        self._capture.local.lines = lines
        try:
            ok = target.notifier.notify(
                body=request.body, title=request.title, notify_type=apprise.NotifyType(request.notify_type),
                body_format=apprise.NotifyFormat.TEXT,
            )  # fmt: skip
        except Exception as e:  # a plugin crash is one failed send
            return False, f"{type(e).__name__}: {e}"[:REASON_MAX]
        finally:
            self._capture.local.lines = None
        if ok:
            return True, ""
        return False, f"{NOT_ACCEPTED}: {lines[-1][:REASON_MAX]}" if lines else NOT_ACCEPTED


def _notifier(url: str, timeout_s: float) -> apprise.Apprise | None:
    import apprise  # noqa: PLC0415 - loaded by main before any target

    asset = apprise.AppriseAsset(
        app_id="relayd", app_desc="relayd alerts", app_url="https://github.com/", async_mode=False, service_timeout=0
    )
    notifier = apprise.Apprise(asset=asset)
    if not notifier.add(url):
        return None
    for plugin in notifier:
        bound_socket_timeouts(plugin, timeout_s)
    return notifier


def bound_socket_timeouts(plugin: Any, timeout_s: float) -> None:
    """Lower the plugin's connect/read timeouts to ``timeout_s`` (plugins without sockets have none)."""
    for name in ("socket_connect_timeout", "socket_read_timeout"):
        if not hasattr(plugin, name):
            continue
        current = getattr(plugin, name)
        if current is None or current > timeout_s:
            setattr(plugin, name, timeout_s)


def _quiet_apprise(capture: _Capture) -> None:
    logger = logging.getLogger("apprise")
    logger.handlers[:] = [capture]
    logger.propagate = False
    logger.setLevel(logging.WARNING)


def serve(stdin: int, sender: Sender) -> None:
    """Run the frames from ``stdin`` until it closes."""
    frames = batch.Frames()
    while data := os.read(stdin, batch.READ_CHUNK):
        for message in frames.feed(data):
            if message[0] == "targets":
                sender.add(message[1])
            elif message[0] == "send":
                sender.send(Request(*message[1:]))


def main(argv: Sequence[str]) -> int:
    """``sender_child.py <reply fd>``: send what stdin asks until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = _Replies(int(argv[0]))
    capture = _Capture()
    try:
        import apprise  # noqa: F401, PLC0415 - the half second of imports, before "ready"

        _quiet_apprise(capture)
    except Exception as e:
        replies.send(("fatal", f"{type(e).__name__}: {e}"[:REASON_MAX]))
        return 1
    replies.send(("ready",))
    serve(sys.stdin.fileno(), Sender(replies, capture))
    os._exit(0)  # a hung send's thread must not hold the exit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
