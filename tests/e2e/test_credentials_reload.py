"""A corrected or rotated key takes effect on a reload, at once.

Two worlds. (1) relayd starts with a secret key the platform does not accept (a typo): the first listing is refused
(SignatureDoesNotMatch) and the daemon waits for the platform; the operator fixes the key in the config file and
reloads: the listing is retried at once with the new key and the segment relays. (2) The key is revoked while relayd
runs: every Create is refused and the segment ends ``failed``, its next try ``failed_retry_interval`` (10 minutes)
away; the operator puts the new key in the config file and reloads: the segment relays within seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from relayd.daemon import Daemon
from relayd.settings import Settings, load_settings
from relayd.store import SegmentState
from tests.e2e.harness import emulator_settings, live_schedule, owned_tasks, wait_for, write_schedules

pytestmark = pytest.mark.slow


def _write_config(path: Path, access_key: str, secret_key: str) -> None:
    path.write_text(f'[relayd]\naccess_key = "{access_key}"\nsecret_key = "{secret_key}"\n', encoding="utf-8")


def _state(daemon: Daemon) -> SegmentState | None:
    records = daemon.store.segments()
    return records[0].state if records else None


def _settings(emu: Any, tmp_path: Path, secret_key: str) -> tuple[Settings, Path, str]:
    """Settings whose credentials come from a config file (the rest as overrides)."""
    values = emulator_settings(emu, tmp_path)
    access_key = values.pop("access_key")
    values.pop("secret_key")
    config = tmp_path / "relayd.toml"
    _write_config(config, access_key, secret_key)
    timing = {"restart_backoff_base": 0.2, "restart_backoff_cap": 0.5, "failed_retry_interval": 600}
    settings = load_settings(
        config, **values, **timing, max_task_seconds=120, prepare_ahead=8, restart_max_attempts=2, api_timeout=3
    )
    return settings, config, access_key


@asynccontextmanager
async def _daemon(settings: Settings) -> AsyncIterator[Daemon]:
    """A daemon on this loop that need not become ready (it may be waiting for the platform)."""
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run(), name="test-daemon")
    try:
        yield daemon
    finally:
        daemon._stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_corrected_key_ends_the_wait_for_the_platform_at_once(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=120, admin=True)
    now = int(time.time())
    write_schedules(tmp_path, live_schedule("keyed", now + 2, now + 110))
    settings, config, access_key = _settings(emu, tmp_path, emu.config.secret_key + "-typo")
    async with _daemon(settings) as daemon:
        refused = lambda: emu.stats()["responses"].get("SignatureDoesNotMatch", 0) >= 2  # noqa: E731
        await wait_for(refused, 20, what="the listing refused twice (the wait has begun backing off)")
        assert not daemon.ready.is_set()
        _write_config(config, access_key, emu.config.secret_key)
        fixed_at = time.monotonic()
        daemon.request_reload()
        await wait_for(daemon.ready.is_set, 20, what="ready once the key is right")
        await wait_for(lambda: len(owned_tasks(emu)) == 1, 20, what="created with the corrected key")
        took = time.monotonic() - fixed_at
    assert took < 10  # at once, not after the listing's backoff


async def test_a_rotated_key_relays_a_failed_segment_again_at_once(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(max_task_seconds=120, admin=True)
    now = int(time.time())
    write_schedules(tmp_path, live_schedule("keyed", now + 12, now + 110))
    settings, config, access_key = _settings(emu, tmp_path, emu.config.secret_key)
    async with _daemon(settings) as daemon:
        await wait_for(daemon.ready.is_set, 30, what="ready")
        emu.set_keys({access_key: "rotated-secret"})  # the old key is revoked before the segment is created
        await wait_for(lambda: _state(daemon) == SegmentState.FAILED, 40, what="failed on the revoked key")
        assert owned_tasks(emu) == []
        _write_config(config, access_key, "rotated-secret")
        fixed_at = time.monotonic()
        daemon.request_reload()
        await wait_for(lambda: len(owned_tasks(emu)) == 1, 20, what="created with the rotated key")
        took = time.monotonic() - fixed_at
        await wait_for(lambda: _state(daemon) == SegmentState.RUNNING, 20, what="running")
    assert took < 10  # at once, not at the slow retry 10 minutes away
