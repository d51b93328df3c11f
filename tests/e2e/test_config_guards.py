"""Configuration that would delete everything, through the real daemon against the emulator (20 s task cap).

A vanished schedules directory, a daemon started without it, files moved out en masse and hostile files dropped
into a live directory must all be reported and cost nothing that runs. Each scenario checks, from the emulator's
own history, that no task was deleted before its end, and runs the invariant monitor (exact plan, failures
handled) while the configuration is broken. Removing one schedule on purpose stays a one-step edit, and a held
mass removal goes through once the operator confirms it with ``relayd apply --allow-removals``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relayd.daemon import Daemon
from tests.e2e.conftest import Monitor, timing_of
from tests.e2e.harness import live_schedule, owned_tasks, running_daemon, settings_for, wait_for, write_schedules

pytestmark = pytest.mark.slow

CAP = 20


def _token(daemon: Daemon) -> str:
    return (daemon.settings.state_path.parent / "api_token").read_text().strip()


async def _get(daemon: Daemon, path: str) -> Any:
    headers = {"Authorization": f"Bearer {_token(daemon)}"}
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{daemon.port}{path}", headers=headers) as r:
        assert r.status == 200, (path, r.status)
        return await r.json() if path.startswith("/v1") else await r.text()


async def _problems(daemon: Daemon) -> str:
    return "\n".join((await _get(daemon, "/v1/schedules"))["config_problems"])


def _deleted_early(emu: Any) -> list[tuple[str, str]]:
    """Tasks deleted before their window ended: a removal, never a cleanup."""
    history = emu.history()
    return [(t["Title"], t["DstAddr"]) for t in history if t["DeletedAt"] is not None and t["DeletedAt"] < t["EndTime"]]


def _schedules(ids: list[str], now: int) -> dict[str, str]:
    return {sid: live_schedule(sid, now - 5, now + 300) for sid in ids}


async def _relayd_cli(*args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYD_", "VOLC_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relayd", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def _cli_target(daemon: Daemon) -> list[str]:
    token_file = daemon.settings.state_path.parent / "api_token"
    return ["--url", f"http://127.0.0.1:{daemon.port}", "--token-file", str(token_file)]


@contextlib.asynccontextmanager
async def _monitored(emu: Any, daemon: Daemon) -> AsyncIterator[Monitor]:
    monitor = Monitor(emu, daemon, timing_of(daemon, slack=6), budget_s=30)
    async with monitor.running():
        yield monitor
    assert monitor.checks >= 1
    assert [str(v) for v in monitor.violations] == []


async def test_a_directory_moved_away_deletes_nothing_and_moving_it_back_resumes(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True)
    now = int(time.time())
    write_schedules(tmp_path, "".join(_schedules(["va", "vb", "vc", "vd"], now).values()))
    directory, away = tmp_path / "schedules", tmp_path / "schedules.away"
    async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=CAP)) as daemon:
        await wait_for(lambda: len(owned_tasks(emu)) == 4, 30, what="4 relays")
        async with _monitored(emu, daemon):
            before = {t["TaskId"] for t in owned_tasks(emu)}
            directory.rename(away)
            os.kill(os.getpid(), signal.SIGHUP)  # the daemon's own reload signal

            async def reported() -> bool:
                return str(directory) in await _problems(daemon)

            await wait_for(reported, 30, what="the missing directory reported")
            await daemon.queue.drained()
            assert _deleted_early(emu) == []
            assert "does not exist" in await _problems(daemon)
            assert before <= {t["TaskId"] for t in owned_tasks(emu)}
            assert sorted(daemon.engine.schedules) == ["va", "vb", "vc", "vd"]

            away.rename(directory)
            os.kill(os.getpid(), signal.SIGHUP)

            async def clean() -> bool:
                return await _problems(daemon) == ""

            await wait_for(clean, 30, what="the problem cleared once the directory is back")
            # Resumed: the chains go on (each schedule's next 20 s segment is created on time).
            await wait_for(lambda: len({t["TaskId"] for t in emu.history()} - before) >= 4, 40, what="next segments")
    assert _deleted_early(emu) == []


async def test_b_starting_without_the_directory_deletes_nothing_the_store_knows(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True)
    now = int(time.time())
    write_schedules(tmp_path, "".join(_schedules(["sa", "sb", "sc"], now).values()))
    settings = settings_for(emu, tmp_path, max_task_seconds=CAP)
    async with running_daemon(settings) as daemon:
        await wait_for(lambda: len(owned_tasks(emu)) == 3, 30, what="3 relays")
        await wait_for(lambda: len(daemon.store.applied()) == 3, 30, what="the applied snapshot saved")
    (tmp_path / "schedules").rename(tmp_path / "elsewhere")
    before = {t["TaskId"] for t in owned_tasks(emu)}
    async with running_daemon(settings) as daemon, _monitored(emu, daemon):
        await daemon.queue.drained()
        assert _deleted_early(emu) == []
        assert "does not exist" in await _problems(daemon)
        assert sorted(daemon.engine.schedules) == ["sa", "sb", "sc"]
        assert before <= {t["TaskId"] for t in owned_tasks(emu)}
        await wait_for(lambda: len({t["TaskId"] for t in emu.history()} - before) >= 3, 40, what="next segments")
    assert _deleted_early(emu) == []


async def test_c_a_mass_removal_is_held_until_confirmed_and_one_removal_is_a_one_step_edit(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True)
    now = int(time.time())
    ids = ["ma", "mb", "mc", "md", "me", "mf"]
    for sid, text in _schedules(ids, now).items():
        write_schedules(tmp_path, text, name=f"{sid}.toml")
    directory, parked = tmp_path / "schedules", tmp_path / "parked"
    parked.mkdir()
    async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=CAP)) as daemon:
        await wait_for(lambda: len(owned_tasks(emu)) == 6, 30, what="6 relays")
        # One schedule removed on purpose: gone at once.
        (directory / "mf.toml").unlink()
        daemon.request_reload()
        await wait_for(lambda: not [t for t in owned_tasks(emu) if t["DstAddr"].endswith("/mf")], 30, what="mf gone")
        assert {dst for _, dst in _deleted_early(emu)} == {"rtmp://push.test/live/mf"}
        # Every file moved out: more than the guard allows, so nothing is removed and the hold is shown.
        async with _monitored(emu, daemon):
            for path in directory.iterdir():
                path.rename(parked / path.name)
            daemon.request_reload()

            async def held() -> bool:
                return bool((await _get(daemon, "/v1/schedules")).get("held_removals"))

            await wait_for(held, 30, what="the removals held")
            await daemon.queue.drained()
            body = await _get(daemon, "/v1/schedules")
            assert body["held_removals"] == ["ma", "mb", "mc", "md", "me"]
            assert "relayd_config_removals_held 5.0" in await _get(daemon, "/metrics")
            code, shown = await _relayd_cli("status", *_cli_target(daemon))
            assert code == 0 and "held" in shown and "ma, mb, mc, md, me" in shown, shown
            assert len(owned_tasks(emu)) == 5
            assert {dst for _, dst in _deleted_early(emu)} == {"rtmp://push.test/live/mf"}
        # The operator confirms: exactly those are removed.
        code, said = await _relayd_cli("apply", "--allow-removals", *_cli_target(daemon))
        assert code == 0 and "ma, mb, mc, md, me" in said, said
        await wait_for(lambda: not owned_tasks(emu), 30, what="every removed schedule's task deleted")
        assert (await _get(daemon, "/v1/schedules"))["held_removals"] == []
        assert daemon.engine.schedules == {}


async def _lag_ticker(lags: list[float], stop: asyncio.Event) -> None:
    """Measures how late the event loop wakes a 50 ms sleeper (a sampling period, not synchronisation)."""
    while not stop.is_set():
        started = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append(time.monotonic() - started - 0.05)


@contextlib.asynccontextmanager
async def _stopping(task: asyncio.Task[None], stop: asyncio.Event) -> AsyncIterator[None]:
    try:
        yield
    finally:
        stop.set()
        await task


def _list_bomb() -> bytes:
    """A 520-byte YAML document whose aliases expand to 9**9 strings ("billion laughs")."""
    lines = ['a: &a ["lolololol","lolololol","lolololol","lolololol","lolololol","lolololol","lolololol","lol","l"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join([*lines, "schedule: *i"]) + "\n"
    return text.encode() + b"#" * (520 - len(text) - 1) + b"\n"


def _merge_bomb() -> bytes:
    """Nested mappings sharing anchors: 4**11 copies of a small table."""
    lines = ["x0: &x0 {k0: v, k1: v, k2: v}"]
    lines += [f"x{i}: &x{i} {{a: *x{i - 1}, b: *x{i - 1}, c: *x{i - 1}, d: *x{i - 1}}}" for i in range(1, 12)]
    return ("\n".join([*lines, "schedule: [*x11]"]) + "\n").encode()


BOMBS = {
    "yaml-alias-bomb": (b"merge.yaml", _merge_bomb, "aliases expand"),
    "520-byte-bomb": (b"laughs.yaml", _list_bomb, "aliases expand"),
    "oversized-file": (b"huge.toml", lambda: b"#" * (5 * 1024 * 1024), "over max_schedule_file_bytes"),
    "invalid-utf8-name": (b"\xff\xfe.toml", lambda: b"", "not valid UTF-8"),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
async def test_d_a_config_bomb_in_a_live_reload_is_reported_and_touches_nothing(
    emulator: Any, tmp_path: Path, bomb: str, log_lines: Callable[[], list[str]]
) -> None:
    name, content, message = BOMBS[bomb]
    assert bomb != "520-byte-bomb" or len(content()) == 520
    emu = await emulator(max_task_seconds=CAP, admin=True)
    now = int(time.time())
    write_schedules(tmp_path, "".join(_schedules(["ba", "bb"], now).values()))
    lags: list[float] = []
    stop = asyncio.Event()
    async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=CAP)) as daemon:
        await wait_for(lambda: len(owned_tasks(emu)) == 2, 30, what="2 relays")
        before = {t["TaskId"] for t in owned_tasks(emu)}
        ticker = asyncio.create_task(_lag_ticker(lags, stop), name="lag-ticker")
        async with _monitored(emu, daemon), _stopping(ticker, stop):
            with open(os.path.join(os.fsencode(tmp_path / "schedules"), name), "wb") as bad:  # a bytes name
                bad.write(content())
            # The directory watcher sees the new file and reloads (a crash there would stop the daemon).
            seen = ('"config_changed"', '"config_watch_error"')
            await wait_for(lambda: any(e in line for line in log_lines() for e in seen), 30, what="the watcher")

            async def reported() -> bool:
                return message in await _problems(daemon)

            await wait_for(reported, 30, what=f"{bomb} reported")
            await daemon.queue.drained()
            assert before <= {t["TaskId"] for t in owned_tasks(emu)}
            assert sorted(daemon.engine.schedules) == ["ba", "bb"]
            # The watcher still works: a good new file next to the bad one is picked up by itself.
            write_schedules(tmp_path, live_schedule("bc", now - 5, now + 300), name="bc.toml")
            await wait_for(lambda: "bc" in daemon.engine.schedules, 30, what="a new file picked up")
            await wait_for(lambda: len(owned_tasks(emu)) == 3, 30, what="its relay")
            assert before <= {t["TaskId"] for t in owned_tasks(emu)}
            assert message in await _problems(daemon)
        assert daemon.state == "started" and not daemon._stop.is_set()  # the daemon kept running
    assert _deleted_early(emu) == []
    assert lags
    assert max(lags) < 1.0, f"the event loop stalled {max(lags):.2f} s"
