"""The Apprise sender: one target's sends, every bit of Apprise work on that target's own worker thread.

Why not ``Apprise.async_notify``: it formats on the event loop and sends on one pool shared by the whole process
(a handful of threads on a small machine). A black-holed target holds a pool thread until its socket times out,
and a few such targets hold them all, so a healthy target's message waits in Apprise's queue behind theirs and
every send stalls. Here each target owns a bounded executor (``THREADS`` threads): its sends run the synchronous
``Apprise.notify`` there, with Apprise's own pooling switched off (``async_mode=False`` keeps the send on the
calling thread, ``service_timeout=0`` leaves the time limit to the caller). A hanging target can only hold its own
threads; its next attempt waits behind them and fails by the caller's timeout; nobody else waits.

Bounded in time too: the plugin's connect and read timeouts are lowered to the send timeout, so a thread the
caller stopped waiting for is released soon after (not after Apprise's longer defaults or a URL's ``rto=``).

Building the first sender of a process loads Apprise's plugins (about half a second of imports and discovery).
The daemon has done that in its settings check (:func:`relayd.alerts.targets.unusable_targets`) before its loop
serves anything; later senders take a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from relayd.alerts.grouping import Message
from relayd.alerts.targets import AlertTarget, quiet_apprise

if TYPE_CHECKING:
    import apprise

THREADS = 1
"""Worker threads per target: delivery sends one message at a time per target, so one is enough; a second send
(``relayd alerts test`` meanwhile) queues behind it."""


class AlertConfigError(Exception):
    """An alert target cannot be used (e.g. Apprise does not know its scheme); the message is redacted."""


class DeliveryError(Exception):
    """One send failed; the message is redacted."""


class AppriseSender:
    """Sends messages to one Apprise URL from a worker thread of its own (see the module docstring)."""

    def __init__(self, target: AlertTarget, *, timeout_s: float) -> None:
        """AlertConfigError (naming the target redacted) when Apprise cannot use the URL."""
        notifier = _notifier(target.url, timeout_s)
        if notifier is None:
            raise AlertConfigError(
                f"alert target {target.shown}: Apprise cannot use this URL (unknown scheme or bad form)"
            )
        self._notifier = notifier
        index = target.ident[:6]
        self._executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix=f"relayd-alert-{index}")

    async def __call__(self, message: Message) -> None:
        """Send ``message`` on this target's thread; DeliveryError if it was not accepted.

        Cancelling (the caller's timeout) stops the wait at once; a send still queued is dropped, one already
        running ends by its socket timeouts.
        """
        context = contextvars.copy_context()
        future = self._executor.submit(context.run, self._send, message)
        if not await asyncio.wrap_future(future):
            raise DeliveryError("the target did not accept the message (see the apprise log lines)")

    def _send(self, message: Message) -> bool:
        import apprise  # noqa: PLC0415 - loaded already by _notifier

        return bool(
            self._notifier.notify(
                body=message.body,
                title=message.title,
                notify_type=apprise.NotifyType(message.tone.value),
                body_format=apprise.NotifyFormat.TEXT,
            )
        )

    def close(self) -> None:
        """Let the thread end once its current send does; queued sends are dropped."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _notifier(url: str, timeout_s: float) -> apprise.Apprise | None:
    import apprise  # noqa: PLC0415 - loaded only when alerts are configured

    asset = apprise.AppriseAsset(
        app_id="relayd", app_desc="relayd alerts", app_url="https://github.com/", async_mode=False, service_timeout=0
    )
    notifier = apprise.Apprise(asset=asset)
    with quiet_apprise():
        added = notifier.add(url)
    if not added:
        return None
    for plugin in notifier:
        _bound_socket_timeouts(plugin, timeout_s)
    return notifier


def _bound_socket_timeouts(plugin: Any, timeout_s: float) -> None:
    """Lower the plugin's connect/read timeouts to ``timeout_s`` (plugins without sockets have none)."""
    for name in ("socket_connect_timeout", "socket_read_timeout"):
        if not hasattr(plugin, name):
            continue
        current = getattr(plugin, name)
        if current is None or current > timeout_s:
            setattr(plugin, name, timeout_s)
