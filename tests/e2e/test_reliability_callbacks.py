"""Reliability under callback faults: dropped, duplicated, reordered, forged, replayed and fuzzed deliveries.

A callback is only a hint: a lost one may delay a restart until the next resync but never loses it; a repeated
one is recorded once; a forged or stale one is refused and changes nothing; no body, however odd, gets a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from relayd.daemon import Daemon, RunState
from relayd.ids import SegmentKey
from relayd.store import SegmentState
from relayd.web.signing import callback_url, sign_for
from tests.e2e import invariants as inv
from tests.e2e.conftest import Monitor, examples, record_accepted_callbacks, timing_of
from tests.e2e.harness import live_schedule, running_daemon, settings_for, wait_for, write_schedules

pytestmark = pytest.mark.slow

AUTH_KEY = "cb-auth-key-for-tests"
CAP = 30


def _url(daemon: Daemon, key: str) -> str:
    secret = str(daemon.store.meta("callback_secret")).encode()
    return callback_url(f"http://127.0.0.1:{daemon.port}", secret, SegmentKey(key))


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> int:
    async with http.post(url, json=body) as response:
        return response.status


async def _forged_and_replayed(daemon: Daemon, key: str, task_id: str) -> list[int]:
    """Deliveries an attacker or a broken proxy could send; each must be refused and recorded nowhere."""
    url = _url(daemon, key)
    now = int(time.time())
    body = {"TaskId": task_id, "EventType": "fail", "Time": now, "EventId": "forged-1"}
    async with aiohttp.ClientSession() as http:
        return [
            await _post(http, url.rsplit("/", 1)[0] + "/" + "a" * 32, body),  # forged mac
            await _post(http, url, {**body, "t": now + 600, "sign": "0" * 32}),  # forged sign
            await _post(http, url, {**body, "t": now - 3600, "sign": sign_for(AUTH_KEY, now - 3600)}),  # replayed
        ]


async def test_callback_faults_never_lose_a_failure_nor_record_one_twice(
    emulator: Any, tmp_path: Path, log_lines: Callable[[], list[str]]
) -> None:
    emu = await emulator(max_task_seconds=CAP, admin=True, callback_auth_key=AUTH_KEY, callback_retry_delay_s=0.2)
    accepted = record_accepted_callbacks(emu)
    now = int(time.time())
    # 60 s windows started in the past: each schedule's running segment (index 1) has 25 s left.
    ids = ["ok1", "ok2", "flaky", "doomed"]
    write_schedules(tmp_path, "".join(live_schedule(sid, now - 35, now + 25) for sid in ids))
    # Duplicates at 0.9: with half the events dropped, a run with few deliveries could see none duplicated at 0.5.
    emu.set_callback_faults(drop_rate=0.5, duplicate_rate=0.9, reorder=True, delay_ms=300)
    settings = settings_for(
        emu, tmp_path, max_task_seconds=CAP, callback_auth_key=AUTH_KEY, resync_interval=3, stable_after=30
    )
    # Half the callbacks are dropped, so in the worst case each of doomed's four failures (the first and one after
    # each of its 3 restarts) is seen only by the next resync: 4 x 3 s, plus backoffs 0.5 + 1 + 2 s, plus slack;
    # all within doomed.1's 25 s. (A flat 15 s with a 4 s resync failed about one run in six: all four lost.)
    budget = (settings.restart_max_attempts + 1) * settings.resync_interval + 0.5 + 1 + 2 + 3
    async with running_daemon(settings) as daemon:
        monitor = Monitor(emu, daemon, timing_of(daemon), budget_s=budget)
        async with monitor.running():
            flaky, doomed = daemon.store.segment(SegmentKey("flaky.1")), daemon.store.segment(SegmentKey("doomed.1"))
            assert flaky is not None and doomed is not None and flaky.task_id and doomed.task_id
            emu.fail_task(flaky.task_id, mode="disable", repeat=1)  # fails again once after its first Continue
            # Never relays again: budget, then failed. ("disable": with callbacks dropped, a failure the platform
            # still lists as relaying — mode "stay" — is only visible through its lost callback; see docs.)
            emu.fail_task(doomed.task_id, mode="disable", repeat=None)
            refused = await _forged_and_replayed(daemon, "ok1.1", str(flaky.task_id))

            def settled() -> bool:
                f, d = daemon.store.segment(SegmentKey("flaky.1")), daemon.store.segment(SegmentKey("doomed.1"))
                return bool(f and d and f.failure_seen_at is None and f.attempts == 2 and d.state == "failed")

            await wait_for(settled, budget + 5, what="flaky restarted twice and doomed failed")
        await wait_for(lambda: emu.stats()["callbacks"]["pending"] == 0, 10, what="callback deliveries done")
        # Snapshot what was answered 200 before reading the history: a delivery accepted after the read would look
        # "accepted but not recorded" (the emulator keeps sending while the test reads).
        accepted_before = list(accepted)
        callbacks = await daemon.store.events(kind="callback", limit=10_000)
        forged = await daemon.store.count_events(dedupe_key="cb:ok1.1:forged-1")
        metrics = {f.name: f for f in text_string_to_metric_families(daemon.metrics.render().decode())}
        token = (tmp_path / "state" / "api_token").read_text().strip()
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
            http.get(f"http://127.0.0.1:{daemon.port}/v1/schedules/doomed") as response,
        ):
            status = json.dumps(await response.json())
        stats = emu.stats()
        secrets = [AUTH_KEY, *daemon.settings.secret_values(), str(daemon.store.meta("callback_secret")), token]
    assert refused == [403, 403, 403] and forged == 0
    assert monitor.violations == []
    assert inv.check_callbacks_once(callbacks, accepted_before) == []
    cb = stats["callbacks"]
    assert cb["dropped"] > 0 and cb["duplicated"] > 0 and cb["held"] > 0  # every fault bit
    assert len(accepted_before) > len(set(accepted_before))  # duplicates were delivered and answered 200 …
    assert {e.data["event_id"] for e in callbacks} >= set(accepted_before)  # … and recorded (once each, above)
    # Invariant 3: the lost cause shows as failed in status, metrics and logs.
    assert '"failed"' in status and "budget" in status
    failed = [s.value for s in metrics["relayd_segments"].samples if s.labels.get("state") == "failed"]
    assert failed == [1.0]
    assert any('"segment_failed"' in line and "doomed.1" in line for line in log_lines())
    assert inv.check_no_secrets(log_lines(), secrets) == []
    assert inv.check_rates(stats, write_qps=10, list_qps=15) == []


# --- fuzzed bodies -------------------------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["TaskId", "task_id", "EventType", "Event", "Status", "TaskStatus", "Time", "ts", "EventId", "t", "sign", "data"]
)
_bodies = st.dictionaries(_keys | st.text(max_size=10), _json, max_size=8)
_raw = (
    st.binary(max_size=300)
    | _bodies.map(lambda b: json.dumps(b).encode())
    | _json.map(lambda v: json.dumps(v).encode())
)


def _post_sync(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def test_fuzzed_callback_bodies_get_a_4xx_or_200_and_never_crash_the_daemon(
    emulator: Any, tmp_path: Path
) -> None:
    # Drawn before the daemon starts: hypothesis objects to the daemon's jitter touching ``random`` mid-draw.
    bodies = examples(_raw, 150)
    emu = await emulator(max_task_seconds=120)
    now = int(time.time())
    write_schedules(tmp_path, live_schedule("fuzz", now - 30, now + 60))
    # No callback_auth_key: with one, every fuzzed body is refused as unsigned before it reaches the parser.
    async with running_daemon(settings_for(emu, tmp_path, max_task_seconds=120)) as daemon:
        url = _url(daemon, "fuzz.0")
        statuses = [await asyncio.to_thread(_post_sync, url, raw) for raw in bodies]
        odd = [(status, raw) for status, raw in zip(statuses, bodies, strict=True) if status not in (200, 400, 403)]
        assert odd == []
        assert daemon.state == RunState.STARTED and daemon.queue.failures == 0
        record = daemon.store.segment(SegmentKey("fuzz.0"))
        assert record is not None and record.state == SegmentState.RUNNING
    assert 400 in statuses and 200 in statuses
