"""Watching the schedules directory: every change asks for a reload, and nothing in the directory can stop it.

The directory may vanish and come back (a volume remounted, an ``mv`` undone): while it is absent the watcher
checks every ``WATCH_RETRY_S`` and asks for a reload when it reappears or disappears. The file watcher
(``watchfiles``) raises on some entries it cannot describe — a file whose name is not UTF-8 ends the watch with
an internal error wrapped in an exception group — so any error of the watch is logged and the watch starts
again after a pause, followed by a reload that sees whatever changed meanwhile (the loader reports such a file by
its escaped name and skips it): a hostile file name must never crash the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog
from watchfiles import awatch

log = structlog.get_logger("relayd.watching")

WATCH_RETRY_S = 5.0
DEBOUNCE_MS = 500


async def watch_config(directory: Path, reload: asyncio.Event, stop: asyncio.Event) -> None:
    """Set ``reload`` on every change in ``directory`` (not recursive) until ``stop`` is set."""
    present = await _is_dir(directory)
    while not stop.is_set():
        failed = present and not await _watch(directory, reload, stop)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_RETRY_S)
        changed = present != await _is_dir(directory)
        if changed:
            present = not present
            log.warning("config_directory_changed", directory=str(directory), present=present)
        if changed or failed:
            reload.set()  # after a failed watch: whatever changed during the pause was not seen


async def _watch(directory: Path, reload: asyncio.Event, stop: asyncio.Event) -> bool:
    """Watch until ``stop`` or until the directory goes; False when the watcher itself failed."""
    try:
        async for _changes in awatch(directory, stop_event=stop, debounce=DEBOUNCE_MS, recursive=False):
            log.info("config_changed", directory=str(directory))
            reload.set()
    except Exception as error:  # whatever the watcher trips on, the daemon goes on
        log.warning("config_watch_error", directory=str(directory), error=_first_line(error), retry_s=WATCH_RETRY_S)
        return False
    return True


async def _is_dir(directory: Path) -> bool:
    """In a thread: a stat on a hung network mount must not hold the event loop."""
    return await asyncio.to_thread(directory.is_dir)


def _first_line(error: BaseException) -> str:
    """The innermost message of an exception (group), one line, bounded."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:300]
