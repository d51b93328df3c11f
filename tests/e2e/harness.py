"""Helpers for end-to-end tests: a daemon in-process or as a subprocess, against a real emulator.

Waiting is always on a condition with a deadline (``wait_for``), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayd.daemon import Daemon
from relayd.emulator.server import Emulator
from relayd.schedules.titles import is_relayd_title
from relayd.settings import Settings, load_settings

Predicate = Callable[[], bool | Awaitable[bool]]


async def wait_for(predicate: Predicate, timeout: float, *, interval: float = 0.05, what: str = "condition") -> None:
    """Re-check ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def live_schedule(sid: str, start: float, end: float | None, *, dst: str | None = None, extra: str = "") -> str:
    """One live-source [[schedule]] in the config format."""
    lines = [
        "[[schedule]]",
        f'id = "{sid}"',
        f'source = "rtmp://pull.test/live/{sid}"',
        f'destination = "{dst or f"rtmp://push.test/live/{sid}"}"',
    ]
    window = f'start = "{iso(start)}"' + (f', end = "{iso(end)}"' if end is not None else "")
    lines.append(f"window = {{ {window} }}")
    return "\n".join(lines) + ("\n" + extra if extra else "") + "\n\n"


def emulator_settings(emulator: Emulator, workdir: Path) -> dict[str, Any]:
    """What every test daemon needs: the emulator's endpoint and keys, paths under ``workdir``, a free port."""
    return {
        "endpoint": emulator.url,
        "access_key": emulator.config.access_key,
        "secret_key": emulator.config.secret_key,
        "schedules_dir": workdir / "schedules",
        "state_path": workdir / "state" / "state.db",
        "listen": f"127.0.0.1:{free_port()}",
    }


def settings_for(emulator: Emulator, workdir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **emulator_settings(emulator, workdir),
        "max_task_seconds": emulator.config.max_task_seconds,
        "prepare_ahead": 8,
        "retention": 3,
        "resync_interval": 30,
        "horizon": 300,
        "restart_backoff_base": 0.5,
        "restart_backoff_cap": 2,
        "restart_max_attempts": 3,
        "stable_after": 5,
        "shutdown_timeout": 5,
        "api_timeout": 3,
    }
    values.update(overrides)
    return load_settings(None, **values)


@contextlib.asynccontextmanager
async def running_daemon(settings: Settings) -> AsyncIterator[Daemon]:
    """A daemon on this loop; stopped (gracefully) and awaited on exit."""
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run(), name="test-daemon")
    ready = asyncio.create_task(daemon.ready.wait(), name="test-daemon-ready")
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        if ready not in done:
            raise AssertionError("daemon did not become ready within 60 s")
        yield daemon
    finally:
        ready.cancel()
        daemon.request_stop()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``work`` as a task for the duration of the block; cancel and await it on exit."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def record_accepted_callbacks(emu: Emulator, accepted: list[str] | None = None) -> list[str]:
    """Wrap the emulator's callback sender: the EventIds of deliveries the daemon answered 200, in order.

    Pass ``accepted`` to keep one list across several emulators (the soak restarts its emulator)."""
    seen: list[str] = [] if accepted is None else accepted
    sender: Any = emu._sender
    original = sender._post

    async def post(url: str, body: bytes) -> bool:
        ok = bool(await original(url, body))
        if ok:
            seen.append(str(json.loads(body)["EventId"]))
        return ok

    sender._post = post
    return seen


# --- history analysis ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    gaps: list[float]
    overlaps: list[tuple[str, str]]
    intervals: list[tuple[float, float, str]]


def chain_on(history: list[dict[str, Any]], dst: str) -> Chain:
    """Relaying intervals on one destination, in order: the gaps between them and any overlaps."""
    intervals = sorted(
        (float(a), float(b) if b is not None else float("inf"), str(t["TaskId"]))
        for t in history
        if t.get("DstAddr") == dst
        for a, b in t.get("Active", [])
    )
    gaps, overlaps = [], []
    for (_, end, tid), (start, _, nxt) in itertools.pairwise(intervals):
        if start < end:
            overlaps.append((tid, nxt))
        else:
            gaps.append(start - end)
    return Chain(gaps, overlaps, intervals)


def titles_held_twice(history: list[dict[str, Any]]) -> list[str]:
    """Titles carried by two tasks at the same time (a re-created task follows a deleted one: that is fine)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for task in history:
        spans.setdefault(task["Title"], []).append((task["CreatedAt"], task["DeletedAt"] or float("inf")))
    return [title for title, lives in spans.items() if any(b[0] < a[1] for a, b in itertools.pairwise(sorted(lives)))]


def relaying_on(emulator: Emulator, dst: str, *, left_s: float = 0.0) -> dict[str, Any] | None:
    """The task relaying to ``dst`` now (生效中, not failed), with at least ``left_s`` seconds of its window left."""
    now = time.time()
    ends = {h["TaskId"]: h["EndTime"] for h in emulator.history()}
    for task in emulator.tasks():
        relaying = task["DstAddr"] == dst and task["Status"] == "生效中" and not task["Failed"]
        if relaying and ends[task["TaskId"]] - now >= left_s:
            return dict(task)
    return None


def live_tasks(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in history if t.get("DeletedAt") is None]


def owned_tasks(emulator: Emulator) -> list[dict[str, Any]]:
    """The emulator's current tasks that carry a relayd Title."""
    return [t for t in emulator.tasks() if is_relayd_title(t["Title"])]


def write_schedules(workdir: Path, text: str, name: str = "schedules.toml") -> None:
    """Write a schedule file into ``workdir/schedules`` (the directory ``settings_for`` points relayd at)."""
    directory = workdir / "schedules"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)


# --- the daemon as a subprocess -------------------------------------------------------------------------------


def write_env_config(path: Path, settings: dict[str, Any]) -> None:
    lines = []
    for key, value in settings.items():
        rendered = (
            f'"{value}"'
            if isinstance(value, str | Path)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        lines.append(f"{key} = {rendered}")
    path.write_text("\n".join(lines) + "\n")


def process_settings(emulator: Emulator, workdir: Path, **overrides: Any) -> dict[str, Any]:
    """Settings for ``relayd run`` in a child process against ``emulator`` (write them with ``write_env_config``)."""
    return {**emulator_settings(emulator, workdir), "log_format": "json", **overrides}


class DaemonProcess:
    """``relayd run --config FILE`` in a child process."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, nofile: int | None = None) -> None:
        """Start it; ``nofile`` lowers its open-file limit (RLIMIT_NOFILE, soft and hard) like systemd's LimitNOFILE."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
        handle = self.log.open("ab")
        rlimit = (nofile, nofile)
        limit = None if nofile is None else functools.partial(resource.setrlimit, resource.RLIMIT_NOFILE, rlimit)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relayd", "run", "--config", str(self.config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=limit,  # noqa: PLW1509 - only setrlimit, no locks involved
        )
        handle.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


async def kill_on_arrival(proc: DaemonProcess, emulator: Emulator, action: str, timeout: float) -> float:
    """Kill the child as soon as the platform receives its next ``action``; the instant of the kill. The child is
    killed in any case; AssertionError (from ``wait_for``) when the call does not arrive within ``timeout``."""
    before = int(emulator.stats()["requests"].get(action, 0))

    def arrived() -> bool:
        return int(emulator.stats()["requests"].get(action, 0)) > before

    try:
        await wait_for(arrived, timeout, interval=0.01, what=f"the next {action}")
        return time.time()
    finally:
        proc.kill()
