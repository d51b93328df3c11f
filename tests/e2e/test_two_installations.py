"""Two installations with one namespace on one account (separate state, a schedule id in common): the second one
sees the first one's marker, changes no task, and says so in status and ``/readyz``; the first one runs undisturbed —
no duplicate deletion, no task updated back and forth, every hand-off on time."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relayd.daemon import Daemon
from relayd.installation import marker_name
from tests.e2e import invariants as inv
from tests.e2e.conftest import Monitor, timing_of
from tests.e2e.harness import live_schedule, running_daemon, settings_for, wait_for, write_schedules

pytestmark = pytest.mark.slow

CAP = 10


async def _get(daemon: Daemon, workdir: Path, path: str) -> tuple[int, Any]:
    token = (workdir / "state" / "api_token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(f"http://127.0.0.1:{daemon.port}{path}") as response,
    ):
        return response.status, await response.json()


async def test_a_second_installation_on_the_same_namespace_detects_it_and_changes_nothing(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True)
    now = int(time.time())
    first, second = tmp_path / "first", tmp_path / "second"
    write_schedules(first, live_schedule("shared", now - 5, now + 60))
    # The same schedule id, pushing elsewhere: unprotected, the second would update the first one's tasks to its
    # own spec and back, and both would delete each ended task.
    write_schedules(second, live_schedule("shared", now - 5, now + 60, dst="rtmp://push.test/live/elsewhere"))
    common = {"max_task_seconds": CAP, "prepare_ahead": 4, "resync_interval": 3}
    async with running_daemon(settings_for(emu, first, **common)) as one:
        monitor = Monitor(emu, one, timing_of(one, slack=3), budget_s=10)
        async with monitor.running(), running_daemon(settings_for(emu, second, **common)) as two:
            assert two.parts.installation.writes_held()
            status, ready = await _get(two, second, "/readyz")
            _, listing = await _get(two, second, "/v1/schedules")
            # Three hand-offs and several resyncs of both with the conflict in place.
            await wait_for(lambda: time.time() > now + 3 * CAP + 2, 40, what="three hand-offs")
            assert two.parts.installation.writes_held() and not one.parts.installation.writes_held()
            first_ready, _ = await _get(one, first, "/readyz")
        history = emu.history()
        journal = emu.requests()
    assert status == 503 and any("namespace" in r and "distinct" in r for r in ready["reasons"]), ready
    assert listing["conflicts"] and one.parts.installation.me in listing["conflicts"][0]
    assert first_ready == 200
    assert [str(v) for v in monitor.violations] == []
    assert {t["DstAddr"] for t in history} == {"rtmp://push.test/live/shared"}  # only the first one's spec
    titles = Counter(t["Title"] for t in history)
    assert {t: n for t, n in titles.items() if n > 1} == {}
    assert inv.check_handoffs(history).violations == []
    writes = Counter((e["action"], e["code"]) for e in journal)
    assert not [k for k in writes if k[0] == "UpdatePullToPushTask"]  # nobody updated anybody's task
    assert ("DeletePullToPushTask", "ResourceNotFound") not in writes  # no task deleted twice
    groups = [e for e in journal if e["action"] in ("CreatePullToPushGroup", "UpdatePullToPushGroup")]
    assert groups and marker_name(one.settings.namespace)  # the marker was written (by the first one only)
    assert writes[("CreatePullToPushGroup", "OK")] == 1
