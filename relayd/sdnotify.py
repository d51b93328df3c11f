"""systemd's notify protocol (sd_notify), without a dependency.

systemd passes ``NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for an abstract socket) to a ``Type=notify``
service; the service sends newline-separated ``KEY=VALUE`` datagrams to it: ``READY=1`` once start-up is done,
``STATUS=...`` free text for ``systemctl status``, ``WATCHDOG=1`` pings when ``WatchdogSec=`` is set (systemd
passes ``WATCHDOG_USEC``, and ``WATCHDOG_PID`` naming the process meant to ping), ``RELOADING=1`` (with
``MONOTONIC_USEC``, as ``Type=notify-reload`` requires) and ``STOPPING=1``.

Design:

* :class:`Notifier` is a no-op without ``NOTIFY_SOCKET``, so the daemon calls it unconditionally.
* Sends are non-blocking datagrams; a full or vanished socket must never stall or crash the daemon, so errors are
  logged once (``sd_notify_failed``) and otherwise swallowed.
* :func:`watchdog_loop` pings from the event loop itself at half the watchdog period: if the loop is stuck, the
  pings stop and systemd restarts the service — exactly the failure the watchdog is for. A thread would keep
  pinging a dead loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends sd_notify messages to ``address`` (None = disabled). Never raises into the caller."""

    def __init__(
        self,
        address: str | None,
        watchdog_usec: int | None = None,
        *,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._address = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._monotonic_ns = monotonic_ns
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, pid: int | None = None) -> Notifier:
        """From ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (the watchdog only if meant for us)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None, _watchdog_usec(env, os.getpid() if pid is None else pid))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self) -> None:
        self.notify("READY=1")

    def status(self, text: str) -> None:
        # STATUS is one line; a newline would start a new (bogus) assignment.
        self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def reloading(self) -> None:
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={self._monotonic_ns() // 1000}")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or None when no watchdog is wanted."""
        if self._watchdog_usec is None or self._address is None:
            return None
        return self._watchdog_usec / 2_000_000

    def notify(self, message: str) -> bool:
        """Send one datagram; True if it was sent (False when disabled or on error)."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(message.encode(), self._address)
        except OSError as e:
            self._report(e)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _report(self, error: OSError) -> None:
        if not self._failed:
            self._failed = True
            log.warning("sd_notify_failed", error=repr(error), note="further sd_notify errors are not logged")


def _socket_address(address: str) -> str:
    # "@name" is an abstract socket: its address starts with a NUL byte.
    return "\0" + address[1:] if address.startswith("@") else address


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(pid):
        return None
    return usec if usec > 0 else None


async def watchdog_loop(notifier: Notifier, stop: asyncio.Event) -> None:
    """Ping ``WATCHDOG=1`` every :meth:`Notifier.watchdog_interval` until ``stop`` is set; returns at once if off."""
    interval = notifier.watchdog_interval()
    if interval is None:
        return
    while not stop.is_set():
        notifier.watchdog()
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
